// storage/image_store.hpp — read-only base images on disk: <data_dir>/images/<name>/<tag>/
// {rootfs/, manifest.json}. Builds (debootstrap, busybox) and imports (OCI layout, docker
// save, plain rootfs tar). Images are owned by real root and never written by sandboxes.
#pragma once

#include <string>
#include <vector>

#include "core/error.hpp"

namespace warren::storage {

struct image_ref {
  std::string name, tag;
  static expected<image_ref> parse(const std::string& ref);  // "name[:tag]", tag default latest
  std::string str() const { return name + ":" + tag; }
};

class image_store {
 public:
  explicit image_store(std::string data_dir);

  std::vector<std::string> list() const;                          // "name:tag", sorted
  expected<std::string> rootfs_path(const std::string& ref) const;  // not_found when absent
  // "debian:bookworm" (debootstrap minbase) or "busybox:latest" (busybox-static). A no-op
  // when the image exists, unless force. Progress goes to stderr.
  status build(const std::string& ref, bool force = false);
  // A .tar (OCI layout, docker save or plain rootfs) or an OCI image-layout directory.
  status import(const std::string& source, const std::string& ref, bool force = false);

 private:
  std::string dir_of(const image_ref& r) const { return root_ + "/" + r.name + "/" + r.tag; }
  status publish(const image_ref& r, const std::string& staging, const std::string& source);
  std::string root_;
};

// --- OCI layer application (pure where possible; exposed for tests) ---
// What a layer's whiteout entries do to the layers below it (OCI image-spec, layer.md).
struct whiteout_action {
  enum kind_t { remove, make_opaque } kind;
  std::string path;  // relative to the rootfs, normalised, never absolute or with ".."
  bool operator==(const whiteout_action&) const = default;
};
// From a layer's member names; names that try to escape ("..") are dropped.
std::vector<whiteout_action> whiteout_actions(const std::vector<std::string>& member_names);
// Applies actions under rootfs without following any symlink out of it (openat2 RESOLVE_IN_ROOT).
status apply_whiteouts(const std::string& rootfs, const std::vector<whiteout_action>& actions);
// Whiteouts, then the layer's files (a contained `tar -x`, whiteout files excluded).
status apply_layer(const std::string& rootfs, const std::string& layer_tar);

}  // namespace warren::storage
