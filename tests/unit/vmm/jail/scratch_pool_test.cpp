// tests/unit/vmm/jail/scratch_pool_test.cpp — the scratch disk pool's hand-out and refill, with a
// fake formatter (no root, no mkfs).
#include "vmm/jail/scratch_pool.hpp"

#include <catch2/catch_test_macros.hpp>

#include <atomic>
#include <set>

using namespace warren::vmm::jail;

namespace {
struct fake_disks {
  std::atomic<int> made{0}, discarded{0};
  std::atomic<bool> broken{false};
  scratch_pool::format_fn format() {
    return [this](uint64_t size) -> warren::expected<pooled_disk> {
      if (broken) return warren::make_error(warren::errc::internal, "no loop device");
      int n = made++;
      return pooled_disk{"img-" + std::to_string(n), n, size, 4096};
    };
  }
  scratch_pool::discard_fn discard() {
    return [this](pooled_disk&) { ++discarded; };
  }
};
}  // namespace

TEST_CASE("the scratch pool fills each wanted size to its depth") {
  fake_disks f;
  scratch_pool pool(f.format(), f.discard(), 2);
  pool.want(100);
  REQUIRE(pool.wait_full(5000));
  CHECK(pool.ready(100) == 2);
  CHECK(pool.ready(200) == 0);
}

TEST_CASE("the scratch pool hands every disk out once and refills behind") {
  fake_disks f;
  scratch_pool pool(f.format(), f.discard(), 2);
  pool.want(100);
  REQUIRE(pool.wait_full(5000));
  std::set<int> seen;
  for (int i = 0; i < 10; ++i) {
    REQUIRE(pool.wait_full(5000));
    auto d = pool.take(100);
    REQUIRE(d);
    CHECK(d->size_bytes == 100);
    CHECK(seen.insert(d->mount_fd).second);  // never the same disk twice
  }
}

TEST_CASE("a miss on a new size returns nothing at once and starts filling it") {
  fake_disks f;
  scratch_pool pool(f.format(), f.discard(), 1);
  CHECK_FALSE(pool.take(300));
  REQUIRE(pool.wait_full(5000));
  CHECK(pool.ready(300) == 1);
}

TEST_CASE("sizes beyond max_sizes are forgotten and their disks discarded") {
  fake_disks f;
  scratch_pool pool(f.format(), f.discard(), 1, 2);
  pool.want(1);
  pool.want(2);
  REQUIRE(pool.wait_full(5000));
  pool.want(3);  // 1 is the least recently wanted
  REQUIRE(pool.wait_full(5000));
  CHECK(pool.ready(1) == 0);
  CHECK(pool.ready(3) == 1);
  CHECK(f.discarded >= 1);
}

TEST_CASE("a failing format stops the filler for that size instead of spinning") {
  fake_disks f;
  f.broken = true;
  scratch_pool pool(f.format(), f.discard(), 2);
  pool.want(100);
  REQUIRE(pool.wait_full(5000));  // nothing left wanted
  CHECK(pool.ready(100) == 0);
  f.broken = false;
  CHECK_FALSE(pool.take(100));  // asks again
  REQUIRE(pool.wait_full(5000));
  CHECK(pool.ready(100) == 2);
}

TEST_CASE("destroying the pool discards every disk still waiting") {
  fake_disks f;
  {
    scratch_pool pool(f.format(), f.discard(), 3);
    pool.want(100);
    REQUIRE(pool.wait_full(5000));
  }
  CHECK(f.discarded == f.made);
}

TEST_CASE("a pool of depth 0 never formats") {
  fake_disks f;
  scratch_pool pool(f.format(), f.discard(), 0);
  CHECK_FALSE(pool.take(100));
  CHECK(pool.wait_full(100));
  CHECK(f.made == 0);
}
