// storage/meta_store.cpp — RocksDB behind meta_store. The only file that includes RocksDB.
#include "storage/meta_store.hpp"

#include <rocksdb/db.h>
#include <rocksdb/options.h>

namespace warren::storage {
namespace {

// "default" spelled out: rocksdb::kDefaultColumnFamilyName may not be initialised yet here.
const std::vector<std::string> family_names = {"default", "sandboxes",
                                               "snapshots", "keys", "nodes"};
constexpr const char* schema_key = "schema_version";

error db_error(const char* what, const rocksdb::Status& s) {
  return make_error(errc::internal, std::string("metadata store ") + what + ": " + s.ToString());
}

rocksdb::WriteOptions durable() {
  rocksdb::WriteOptions w;
  w.sync = true;  // fsync the WAL before acknowledging
  return w;
}

}  // namespace

expected<std::unique_ptr<meta_store>> meta_store::open(const std::string& dir) {
  rocksdb::DBOptions opts;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  opts.max_background_jobs = 2;
  opts.keep_log_file_num = 3;
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (auto& n : family_names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions{});

  std::unique_ptr<meta_store> store(new meta_store);
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(opts, dir, cfs, &store->handles_, &raw);
  if (!s.ok()) return db_error("open", s);
  store->db_.reset(raw);

  std::string v;
  s = store->db_->Get(rocksdb::ReadOptions{}, store->handles_[0], schema_key, &v);
  if (s.IsNotFound()) {
    s = store->db_->Put(durable(), store->handles_[0], schema_key, std::to_string(schema_version));
    if (!s.ok()) return db_error("write schema version", s);
    store->stored_version_ = schema_version;
  } else if (!s.ok()) {
    return db_error("read schema version", s);
  } else {
    store->stored_version_ = std::atoi(v.c_str());
    if (store->stored_version_ > schema_version)
      return make_error(errc::internal, "metadata store at " + dir + " has schema version " + v +
                                            ", newer than this build understands (" +
                                            std::to_string(schema_version) + ")");
  }
  return store;
}

meta_store::~meta_store() {
  if (!db_) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  db_->Close();
}

rocksdb::ColumnFamilyHandle* meta_store::handle(family f) const {
  return handles_[static_cast<size_t>(f) + 1];
}

status meta_store::put(family f, std::string_view key, std::string_view value) {
  auto s = db_->Put(durable(), handle(f), rocksdb::Slice(key.data(), key.size()),
                    rocksdb::Slice(value.data(), value.size()));
  if (!s.ok()) return db_error("put", s);
  return ok();
}

expected<std::optional<std::string>> meta_store::get(family f, std::string_view key) {
  std::string v;
  auto s = db_->Get(rocksdb::ReadOptions{}, handle(f), rocksdb::Slice(key.data(), key.size()), &v);
  if (s.IsNotFound()) return std::optional<std::string>{};
  if (!s.ok()) return db_error("get", s);
  return std::optional<std::string>{std::move(v)};
}

status meta_store::erase(family f, std::string_view key) {
  auto s = db_->Delete(durable(), handle(f), rocksdb::Slice(key.data(), key.size()));
  if (!s.ok()) return db_error("delete", s);
  return ok();
}

expected<std::vector<std::pair<std::string, std::string>>> meta_store::scan(family f) {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions{}, handle(f)));
  for (it->SeekToFirst(); it->Valid(); it->Next())
    out.emplace_back(it->key().ToString(), it->value().ToString());
  if (!it->status().ok()) return db_error("scan", it->status());
  return out;
}

}  // namespace warren::storage
