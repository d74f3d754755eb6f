// storage/image_ref.hpp — image references as users write them ("python:3.12",
// "ghcr.io/acme/tool:v1", "127.0.0.1:5000/x/y@sha256:…"), normalised the way Docker does
// (docker.io/library/ dropped), and the one place that maps a reference to a directory name.
// Never yields a name or tag that could climb out of the image store ("..", absolute paths).
#pragma once

#include <string>

#include "core/error.hpp"

namespace warren::storage {

struct image_ref {
  std::string name;    // "python", "acme/tool", "127.0.0.1:5000/test/multi"
  std::string tag;     // "latest" when neither a tag nor a digest is given; "" with a digest only
  std::string digest;  // "sha256:<64 hex>" for name@digest references
  static expected<image_ref> parse(const std::string& ref);
  std::string str() const { return name + (digest.empty() ? ":" + tag : "@" + digest); }
  // Where to pull it from: the registry host ("docker.io" for short names) and repository
  // ("library/python" for Docker Hub's official images).
  std::string registry() const;
  std::string repository() const;
  // The store's two directory levels: the name with '/' as '+' (never in a reference), and
  // the tag or "@sha256:…". from_dirs is the inverse (nullopt for what parse would refuse).
  std::string name_dir() const;
  std::string tag_dir() const { return digest.empty() ? tag : "@" + digest; }
  static expected<image_ref> from_dirs(const std::string& name_dir, const std::string& tag_dir);
};

}  // namespace warren::storage
