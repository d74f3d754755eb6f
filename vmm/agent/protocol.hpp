// vmm/agent/protocol.hpp — THE agent wire protocol (docs/design/agent.md): frame layout, message
// kinds, their CBOR payloads and an incremental decoder. Shared by the agent and the host client.
// Pure: no I/O, no globals, never throws to its callers (bad input is a returned error).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace warren::agent::proto {

// Frame: version u8 | type u8 | stream id u32 | payload length u32 (big-endian) | payload.
inline constexpr uint8_t version = 1;
inline constexpr std::size_t header_size = 10;
inline constexpr uint32_t max_payload = 1u << 20;      // larger → the connection is closed
inline constexpr uint32_t max_chunk = 64u * 1024;      // what either end puts in one data frame
inline constexpr uint32_t default_window = 256u * 1024;  // credit granted when none is asked
inline constexpr uint32_t max_window = 16u << 20;

// Stream 0 carries connection-level messages (hello, ping); every other stream is opened by
// the host with a request frame and ends with exactly one of: exit, result, error.
enum class msg : uint8_t {
  hello = 1,   // both ways, stream 0, CBOR hello
  ping = 2,    // host→agent, payload echoed in pong
  pong = 3,    // agent→host
  // requests (host→agent) — open a stream
  exec = 10,       // CBOR exec_request
  file_read = 11,  // CBOR file_request → data*, result{size}
  file_write = 12, // CBOR file_request → opened, credit; host data*, eof → result{size}
  stat = 13,       // CBOR file_request → result file_info
  list = 14,       // CBOR file_request → entries*, result{count}
  remove = 15,     // CBOR file_request{recursive} → result
  mkdir = 16,      // CBOR file_request{mode} → result (parents created, existing dir is fine)
  watch = 17,      // CBOR file_request{recursive} → opened, event*
  port_connect = 18,  // CBOR port_request → opened, credit; data/eof both ways → result
  rename = 19,        // CBOR file_request{path, to} → result file_info (of the new path)
  // in-stream messages
  opened = 30,   // agent→host CBOR opened (exec: pid)
  data = 31,     // raw bytes: exec stdin, file contents, port bytes (both ways)
  eof = 32,      // empty: no more data in that direction (stdin close, upload end, half-close)
  out = 33,      // agent→host raw: exec stdout (a pty's only output)
  err = 34,      // agent→host raw: exec stderr
  exit = 35,     // agent→host CBOR exit_status; ends an exec stream
  result = 36,   // agent→host CBOR, per-request; ends the stream
  error = 37,    // agent→host CBOR error_reply; ends the stream
  credit = 38,   // both ways CBOR credit: the sender may now send this many more data bytes
  signal = 39,   // host→agent CBOR signal_request (to the exec's process group)
  resize = 40,   // host→agent CBOR resize_request (pty only)
  event = 41,    // agent→host CBOR watch_event
  entries = 42,  // agent→host CBOR entries (one batch of a list)
  cancel = 43,   // host→agent empty: abort the stream (kills an exec's process group)
};

bool is_known(uint8_t type);
std::string_view name(msg m);

struct frame {
  msg type = msg::ping;
  uint32_t stream = 0;
  std::string payload;
};

// Appends one encoded frame to `out`. The payload must be at most max_payload bytes.
void append_frame(std::string& out, msg type, uint32_t stream, std::string_view payload = {});
std::string encode_frame(msg type, uint32_t stream, std::string_view payload = {});

// Incremental decoder: feed bytes as they arrive, pull whole frames. A wrong version, unknown
// type or oversized length makes it `bad` for good: the caller must close the connection.
class decoder {
 public:
  enum class status { frame, need_more, bad };
  void feed(const char* data, std::size_t n);
  void feed(std::string_view s) { feed(s.data(), s.size()); }
  status next(frame& out);
  const std::string& why() const { return why_; }
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  std::string buf_;
  std::size_t pos_ = 0;
  std::string why_;
};

// ---- CBOR payloads -------------------------------------------------------------------------

struct hello {
  uint32_t version = proto::version;
  std::string agent;  // "warren-agent/0.1"
  int64_t pid = 0;
};

struct exec_request {
  std::vector<std::string> argv;           // either argv (PATH-searched)...
  std::string command;                     // ...or a shell command run by /bin/sh -c
  std::map<std::string, std::string> env;  // merged over the agent's environ
  std::string cwd;                         // absolute; empty = the agent's cwd
  bool pty = false;
  uint16_t cols = 80, rows = 24;
  uint64_t timeout_ms = 0;  // 0 = none; past it the process group is SIGKILLed
  uint32_t window = default_window;  // initial stdout+stderr credit granted to the agent
  // Run as this user of the sandbox's /etc/passwd (uid, gid, supplementary groups, HOME, USER,
  // LOGNAME, SHELL; cwd defaults to its home). Empty = the agent's own user (root).
  std::string user;
};

struct opened {
  int64_t pid = 0;  // exec only
};

struct exit_status {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;
  double duration_ms = 0;
};

struct error_reply {
  std::string code;  // bad_request | not_found | conflict | internal | connection_refused | ...
  std::string message;
};

struct credit {
  uint32_t bytes = 0;
};

struct signal_request {
  int signal = 0;
};

struct resize_request {
  uint16_t cols = 80, rows = 24;
};

// Every file operation: path must be absolute; it is resolved inside the agent's root.
struct file_request {
  std::string path;
  bool recursive = false;         // remove, watch
  std::optional<uint32_t> mode;   // file_write, mkdir (permission bits)
  uint32_t window = default_window;  // file_read, list, watch: initial agent→host credit
  // file_write, mkdir: what they create (the file, missing parents) is owned by this user of
  // the sandbox's /etc/passwd. Empty = root.
  std::string user;
  std::string to;  // rename: the new absolute path (parents are created)
  // stat, list, rename: also report each file's metadata (its user.e2b.* extended attributes).
  bool meta = false;
  // file_write: replace the file's metadata with these (keys without the user.e2b. prefix).
  std::optional<std::map<std::string, std::string>> set_meta;
};

struct file_info {
  std::string name;
  std::string path;
  std::string type;  // file | dir | symlink | other
  uint64_t size = 0;
  uint32_t mode = 0;       // permission bits (07777)
  int64_t mtime_ns = 0;    // since the epoch
  std::string target;      // symlinks only
  uint32_t uid = 0, gid = 0;
  std::string owner, group;  // names from the sandbox's /etc/passwd and /etc/group ("" = none)
  std::map<std::string, std::string> meta;  // user.e2b.* xattrs, prefix stripped (when asked)
};

struct entries {
  std::vector<file_info> items;
};

struct file_result {  // file_read, file_write, list (count), remove, mkdir
  uint64_t size = 0;
};

struct watch_event {
  std::string event;  // create | modify | delete | rename | overflow
  std::string path;
};

struct port_request {
  uint16_t port = 0;
  uint32_t window = default_window;
};

// encode() gives the CBOR payload; decode() is strict about types, tolerant of unknown fields
// (a newer peer may add some) and reports what was wrong in `why`.
#define WARREN_AGENT_PAYLOAD(T)   \
  std::string encode(const T& v); \
  bool decode(std::string_view payload, T& out, std::string& why);
WARREN_AGENT_PAYLOAD(hello)
WARREN_AGENT_PAYLOAD(exec_request)
WARREN_AGENT_PAYLOAD(opened)
WARREN_AGENT_PAYLOAD(exit_status)
WARREN_AGENT_PAYLOAD(error_reply)
WARREN_AGENT_PAYLOAD(credit)
WARREN_AGENT_PAYLOAD(signal_request)
WARREN_AGENT_PAYLOAD(resize_request)
WARREN_AGENT_PAYLOAD(file_request)
WARREN_AGENT_PAYLOAD(file_info)
WARREN_AGENT_PAYLOAD(entries)
WARREN_AGENT_PAYLOAD(file_result)
WARREN_AGENT_PAYLOAD(watch_event)
WARREN_AGENT_PAYLOAD(port_request)
#undef WARREN_AGENT_PAYLOAD

}  // namespace warren::agent::proto
