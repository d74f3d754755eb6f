// net/egress/secret_box.hpp — encryption at rest for credentials (AES-256-GCM under a per-node key
// file, mode 0600). Never logs or returns the key; a key file readable by group/others is refused.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace warren::net::egress {

// Immutable once loaded: seal and open may be called from any number of threads.
class secret_box {
 public:
  // Reads the 32-byte key at key_path, or creates it (random, mode 0600, atomically: written to a
  // temporary file and linked into place, so a reader never sees a half key). A key file with any
  // group/other permission bit, or of the wrong size, is an error.
  static expected<secret_box> load_or_create(const std::string& key_path);

  // "wsb1:" + base64(nonce[12] | ciphertext | tag[16]); the nonce is random per call.
  std::string seal(std::string_view plain) const;
  // The plaintext; an error for a bad format, a wrong key or any tampering.
  expected<std::string> open(std::string_view sealed) const;

 private:
  explicit secret_box(const std::array<unsigned char, 32>& key) : key_(key) {}
  std::array<unsigned char, 32> key_;
};

}  // namespace warren::net::egress
