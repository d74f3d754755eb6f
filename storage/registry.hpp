// storage/registry.hpp — pulling images from OCI / Docker v2 registries (docs/guides/images.md):
// the registry's token (WWW-Authenticate: Bearer) and basic auth, TLS, manifest lists and OCI
// indexes resolved to linux/amd64, every blob's digest and size verified, layers stored once by
// digest in the store's blob directory (an interrupted download resumes from its .part), then
// image_store::install (nothing published unless every step succeeded). Blocking (libcurl): run
// it off the actor and I/O threads.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>

#include "core/error.hpp"
#include "storage/image_store.hpp"

namespace warren::storage {

struct registry_options {
  // Basic-auth credentials by registry host ("127.0.0.1:5000", "docker.io"): user, password.
  std::map<std::string, std::pair<std::string, std::string>> credentials;
  // Registries spoken to over plain HTTP. Others speak HTTPS, verified; a loopback one that does
  // not speak TLS at all is spoken to in plain HTTP.
  std::vector<std::string> insecure;
  std::string ca_file;  // the CA file registries' certificates are checked against ("" = the host's)
};

// Pulls `ref` into `store`; `progress` gets one line per step. The result: the image's name.
expected<std::string> pull_image(image_store& store, const std::string& ref, const registry_options& opts,
                                 const std::function<void(const std::string&)>& progress = {});

// Reads registry options from a JSON file: {"credentials": {"host": {"username", "password"}},
// "insecure": ["host:port"], "ca_file": "..."}; a missing file is no options.
expected<registry_options> load_registry_options(const std::string& path);

}  // namespace warren::storage
