// storage/meta_store.hpp — the RocksDB metadata store: one column family per record kind, a
// schema version record, typed put/get/scan. Every write is synced (WAL fsync) before it
// returns, so a write that acknowledges a client survives kill -9 and power loss.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"
#include "storage/records.hpp"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace warren::storage {

enum class family { sandboxes, snapshots, keys, nodes };

class meta_store {
 public:
  static constexpr int schema_version = 1;

  // Opens (creating if missing) the store at `dir`. A store written by a newer schema is refused.
  static expected<std::unique_ptr<meta_store>> open(const std::string& dir);
  ~meta_store();
  meta_store(const meta_store&) = delete;
  meta_store& operator=(const meta_store&) = delete;

  status put(family f, std::string_view key, std::string_view value);
  expected<std::optional<std::string>> get(family f, std::string_view key);
  status erase(family f, std::string_view key);
  // Every (key, value) of a family in key order.
  expected<std::vector<std::pair<std::string, std::string>>> scan(family f);

  template <class T>
  status put_record(family f, const T& rec) {
    return put(f, record_key(rec), encode(rec));
  }
  template <class T>
  expected<std::optional<T>> get_record(family f, std::string_view key) {
    auto raw = get(f, key);
    if (!raw) return std::move(raw).err();
    if (!raw->has_value()) return std::optional<T>{};
    auto rec = decode<T>(**raw);
    if (!rec) return std::move(rec).err();
    return std::optional<T>{std::move(*rec)};
  }

  int stored_schema_version() const { return stored_version_; }

 private:
  meta_store() = default;
  rocksdb::ColumnFamilyHandle* handle(family f) const;

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // [default, sandboxes, snapshots, keys, nodes]
  int stored_version_ = 0;
};

}  // namespace warren::storage
