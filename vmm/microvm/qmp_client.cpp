// vmm/microvm/qmp_client.cpp — QMP framing (docs/interop/qmp-spec.rst in QEMU): one JSON object
// per line; replies carry the "id" we sent, so a late reply to a command that timed out is
// recognised and skipped; events may interleave anywhere and are queued, never lost silently.
#include "vmm/microvm/qmp_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace warren::vmm::microvm {
namespace {

using nlohmann::json;

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

qmp_client::qmp_client(qmp_client&& o) noexcept
    : fd_(o.fd_), opt_(o.opt_), buf_(std::move(o.buf_)), greeting_(std::move(o.greeting_)),
      events_(std::move(o.events_)), next_id_(o.next_id_) {
  o.fd_ = -1;
}

qmp_client& qmp_client::operator=(qmp_client&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
    opt_ = o.opt_;
    buf_ = std::move(o.buf_);
    greeting_ = std::move(o.greeting_);
    events_ = std::move(o.events_);
    next_id_ = o.next_id_;
  }
  return *this;
}

qmp_client::~qmp_client() {
  if (fd_ >= 0) ::close(fd_);
}

expected<qmp_client> qmp_client::connect(const std::string& socket_path, qmp_options opt) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof(addr.sun_path))
    return make_error(errc::internal, "qmp: socket path too long for a unix socket: " + socket_path);
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  const auto deadline = clock::now() + opt.timeout;
  // QEMU creates the socket a moment after it starts: ENOENT/ECONNREFUSED are retried.
  for (;;) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return make_error(errc::internal, std::string("qmp: socket: ") + std::strerror(errno));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) return handshake(fd, opt);
    int e = errno;
    ::close(fd);
    if ((e != ENOENT && e != ECONNREFUSED) || clock::now() >= deadline)
      return make_error(e == ENOENT || e == ECONNREFUSED ? errc::timeout : errc::bad_gateway,
                        "qmp: connect " + socket_path + ": " + std::strerror(e));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

expected<qmp_client> qmp_client::handshake(int fd, qmp_options opt) {
  qmp_client c(fd, opt);
  auto hello = c.read_message(clock::now() + opt.timeout);
  if (!hello) return std::move(hello).err();
  if (!hello->contains("QMP") || !(*hello)["QMP"].is_object())
    return c.fail("the greeting is not QMP's: " + hello->dump().substr(0, 200));
  c.greeting_ = (*hello)["QMP"];
  auto caps = c.execute("qmp_capabilities");
  if (!caps) return std::move(caps).err();
  return c;
}

error qmp_client::fail(std::string why) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  buf_.clear();
  return make_error(errc::bad_gateway, "qmp: " + std::move(why));
}

void qmp_client::queue_event(json ev) {
  if (events_.size() >= opt_.max_events) events_.pop_front();
  events_.push_back(std::move(ev));
}

expected<nlohmann::json> qmp_client::read_message(clock::time_point deadline) {
  for (;;) {
    if (fd_ < 0) return make_error(errc::bad_gateway, "qmp: not connected");
    auto nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (line.size() > opt_.max_line) return fail("a message longer than " + std::to_string(opt_.max_line) + " bytes");
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object()) return fail("not a JSON object: " + line.substr(0, 200));
      return j;
    }
    if (buf_.size() > opt_.max_line) return fail("a message longer than " + std::to_string(opt_.max_line) + " bytes");
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail(std::string("poll: ") + std::strerror(errno));
    if (r == 0) return make_error(errc::timeout, "qmp: no answer in time");
    char chunk[65536];
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return fail(std::string("read: ") + std::strerror(errno));
    if (n == 0) return fail(buf_.empty() ? "QEMU closed the connection" : "QEMU closed the connection mid-message");
    buf_.append(chunk, static_cast<std::size_t>(n));
  }
}

expected<bool> qmp_client::write_all(const std::string& data, clock::time_point deadline) {
  std::size_t off = 0;
  while (off < data.size()) {
    if (fd_ < 0) return make_error(errc::bad_gateway, "qmp: not connected");
    ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail(std::string("send: ") + std::strerror(errno));
    pollfd p{fd_, POLLOUT, 0};
    int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r == 0) return fail("QEMU does not read its socket");  // a half-sent command: unusable
  }
  return true;
}

expected<nlohmann::json> qmp_client::execute(const std::string& command, const nlohmann::json& args) {
  if (fd_ < 0) return make_error(errc::bad_gateway, "qmp: not connected");
  const auto deadline = clock::now() + opt_.timeout;
  const std::uint64_t id = next_id_++;
  json req = {{"execute", command}, {"id", id}};
  if (!args.is_null()) req["arguments"] = args;
  auto sent = write_all(req.dump() + "\n", deadline);
  if (!sent) return std::move(sent).err();
  for (;;) {
    auto msg = read_message(deadline);
    if (!msg) {
      if (msg.err().code == errc::timeout)
        return make_error(errc::timeout, "qmp " + command + ": no answer in " + std::to_string(opt_.timeout.count()) + " ms");
      return std::move(msg).err();
    }
    json& m = *msg;
    if (m.contains("event")) {
      queue_event(std::move(m));
      continue;
    }
    if (!m.contains("return") && !m.contains("error")) return fail("neither reply nor event: " + m.dump().substr(0, 200));
    // A reply to an earlier command that timed out: skipped, its id is not ours.
    if (!m.contains("id") || m["id"] != id) continue;
    if (m.contains("error")) {
      const json& e = m["error"];
      std::string cls = e.is_object() && e.contains("class") && e["class"].is_string() ? e["class"].get<std::string>() : "?";
      std::string desc = e.is_object() && e.contains("desc") && e["desc"].is_string() ? e["desc"].get<std::string>() : e.dump();
      return make_error(errc::bad_request, "qmp " + command + ": " + cls + ": " + desc);
    }
    return std::move(m["return"]);
  }
}

expected<nlohmann::json> qmp_client::next_event(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (events_.empty()) {
    auto msg = read_message(deadline);
    if (!msg) return std::move(msg).err();
    if (msg->contains("event")) queue_event(std::move(*msg));
    // Anything else here is a late reply to a command that timed out: skipped.
  }
  json ev = std::move(events_.front());
  events_.pop_front();
  return ev;
}

}  // namespace warren::vmm::microvm
