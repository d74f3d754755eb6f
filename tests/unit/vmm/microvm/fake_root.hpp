// tests/unit/vmm/microvm/fake_root.hpp — a throw-away directory standing in for a host's /dev,
// /proc and /sys (or holding test files), removed with the test.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

struct fake_root {
  std::string path;
  fake_root() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "warren-microvm-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~fake_root() { std::filesystem::remove_all(path); }
  std::string at(const std::string& rel) const { return path + "/" + rel; }
  void file(const std::string& rel, const std::string& content = "") const {
    std::filesystem::create_directories(std::filesystem::path(at(rel)).parent_path());
    std::ofstream(at(rel), std::ios::binary) << content;
  }
  void dir(const std::string& rel) const { std::filesystem::create_directories(at(rel)); }
};
