// storage/image_store.hpp — read-only base images on disk: <data_dir>/images/<name>/<tag>/
// {rootfs/, manifest.json}. Builds (debootstrap, busybox) and imports (OCI layout, docker
// save, plain rootfs tar). Images are owned by real root and never written by sandboxes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "storage/image_ref.hpp"

namespace warren::storage {

// What GET /v1/images shows of an image. digest is the registry manifest's ("" for images
// built or imported here).
struct image_info {
  std::string name, digest, created_at;
  uint64_t size_bytes = 0;
};

// Where an installed image came from, kept in its manifest.json.
struct image_origin {
  std::string source;               // "pull 127.0.0.1:5000/x:v1", "import /tmp/x.tar", …
  std::string digest;               // the manifest's digest, or ""
  std::vector<std::string> layers;  // digests of the layer blobs it was made of (pulled images)
};

class image_store {
 public:
  explicit image_store(std::string data_dir);

  std::vector<std::string> list() const;                          // "name:tag", sorted
  std::vector<image_info> infos() const;                          // same order as list()
  expected<std::string> rootfs_path(const std::string& ref) const;  // not_found when absent
  // "debian:bookworm" (debootstrap minbase) or "busybox:latest" (busybox-static). A no-op
  // when the image exists, unless force. Progress goes to stderr.
  status build(const std::string& ref, bool force = false);
  // A .tar (OCI layout, docker save or plain rootfs) or an OCI image-layout directory.
  status import(const std::string& source, const std::string& ref, bool force = false);
  // Unpacks layer files (tar, tar+gzip, tar+zstd) in order into a new rootfs and publishes it
  // as r; nothing of it stays behind on failure. The layer files are only read.
  status install(const image_ref& r, const std::vector<std::string>& layers, const image_origin& origin);
  // Removes the image, then the layer blobs no other image was made of (unless a pull is
  // running: blobs_lock). not_found when absent. Running sandboxes keep their mount of it.
  status remove(const std::string& ref);

  // Layer blobs of pulled images, stored once by digest: <blob_dir>/<64 hex>.
  std::string blob_dir() const { return root_ + "/.blobs/sha256"; }
  // flock of the blob directory: shared while a pull uses blobs, exclusive to collect them.
  // Returns the held descriptor (close it to release) or -1 when `wait` is false and it is busy.
  int blobs_lock(bool exclusive, bool wait) const;

 private:
  std::string dir_of(const image_ref& r) const { return root_ + "/" + r.name_dir() + "/" + r.tag_dir(); }
  status publish(const image_ref& r, const std::string& staging, const image_origin& origin);
  expected<std::string> make_staging(const char* kind) const;
  void collect_blobs() const;
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
