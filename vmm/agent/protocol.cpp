// vmm/agent/protocol.cpp — frame encoding, the incremental decoder and the CBOR codecs of the
// agent protocol. Every nlohmann exception stops here and becomes a `false` with a reason.
#include "vmm/agent/protocol.hpp"

#include <nlohmann/json.hpp>

namespace warren::agent::proto {

using json = nlohmann::json;

bool is_known(uint8_t t) {
  return (t >= 1 && t <= 3) || (t >= 10 && t <= 19) || (t >= 30 && t <= 43);
}

std::string_view name(msg m) {
  switch (m) {
    case msg::hello: return "hello";
    case msg::ping: return "ping";
    case msg::pong: return "pong";
    case msg::exec: return "exec";
    case msg::file_read: return "file_read";
    case msg::file_write: return "file_write";
    case msg::stat: return "stat";
    case msg::list: return "list";
    case msg::remove: return "remove";
    case msg::mkdir: return "mkdir";
    case msg::watch: return "watch";
    case msg::port_connect: return "port_connect";
    case msg::rename: return "rename";
    case msg::opened: return "opened";
    case msg::data: return "data";
    case msg::eof: return "eof";
    case msg::out: return "out";
    case msg::err: return "err";
    case msg::exit: return "exit";
    case msg::result: return "result";
    case msg::error: return "error";
    case msg::credit: return "credit";
    case msg::signal: return "signal";
    case msg::resize: return "resize";
    case msg::event: return "event";
    case msg::entries: return "entries";
    case msg::cancel: return "cancel";
  }
  return "unknown";
}

static void put_u32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

static uint32_t get_u32(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

void append_frame(std::string& out, msg type, uint32_t stream, std::string_view payload) {
  out.push_back(static_cast<char>(version));
  out.push_back(static_cast<char>(type));
  put_u32(out, stream);
  put_u32(out, static_cast<uint32_t>(payload.size()));
  out.append(payload);
}

std::string encode_frame(msg type, uint32_t stream, std::string_view payload) {
  std::string out;
  out.reserve(header_size + payload.size());
  append_frame(out, type, stream, payload);
  return out;
}

void decoder::feed(const char* data, std::size_t n) {
  // Compact lazily so a long-lived connection does not grow its buffer forever.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > 64 * 1024)) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  buf_.append(data, n);
}

decoder::status decoder::next(frame& out) {
  if (!why_.empty()) return status::bad;
  if (buffered() < header_size) return status::need_more;
  const char* h = buf_.data() + pos_;
  auto ver = static_cast<uint8_t>(h[0]);
  auto type = static_cast<uint8_t>(h[1]);
  uint32_t len = get_u32(h + 6);
  if (ver != version) {
    why_ = "unsupported protocol version " + std::to_string(ver);
    return status::bad;
  }
  if (!is_known(type)) {
    why_ = "unknown message type " + std::to_string(type);
    return status::bad;
  }
  if (len > max_payload) {
    why_ = "payload of " + std::to_string(len) + " bytes exceeds the limit";
    return status::bad;
  }
  if (buffered() < header_size + len) return status::need_more;
  out.type = static_cast<msg>(type);
  out.stream = get_u32(h + 2);
  out.payload.assign(h + header_size, len);
  pos_ += header_size + len;
  return status::frame;
}

// ---- CBOR ----------------------------------------------------------------------------------

namespace {

template <class T>
void opt(const json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it != j.end() && !it->is_null()) out = it->get<T>();
}

template <class T>
void req(const json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end()) throw std::invalid_argument(std::string("missing field ") + key);
  out = it->get<T>();
}

template <class T, class F>
bool decode_with(std::string_view payload, T& out, std::string& why, F&& fill) {
  try {
    json j = json::from_cbor(payload.begin(), payload.end());
    if (!j.is_object()) {
      why = "payload is not a map";
      return false;
    }
    T v{};
    fill(j, v);
    out = std::move(v);
    return true;
  } catch (const std::exception& e) {
    why = e.what();
    return false;
  }
}

std::string cbor(const json& j) {
  auto bytes = json::to_cbor(j);
  return std::string(bytes.begin(), bytes.end());
}

json info_json(const file_info& v) {
  json j = {{"name", v.name}, {"path", v.path}, {"type", v.type}, {"size", v.size},
            {"mode", v.mode}, {"mtime_ns", v.mtime_ns}, {"uid", v.uid}, {"gid", v.gid}};
  if (!v.target.empty()) j["target"] = v.target;
  if (!v.owner.empty()) j["owner"] = v.owner;
  if (!v.meta.empty()) j["meta"] = v.meta;
  if (!v.group.empty()) j["group"] = v.group;
  return j;
}

void info_fill(const json& j, file_info& v) {
  opt(j, "name", v.name);
  opt(j, "path", v.path);
  req(j, "type", v.type);
  opt(j, "size", v.size);
  opt(j, "mode", v.mode);
  opt(j, "mtime_ns", v.mtime_ns);
  opt(j, "target", v.target);
  opt(j, "uid", v.uid);
  opt(j, "gid", v.gid);
  opt(j, "owner", v.owner);
  opt(j, "group", v.group);
  opt(j, "meta", v.meta);
}

}  // namespace

std::string encode(const hello& v) {
  return cbor({{"version", v.version}, {"agent", v.agent}, {"pid", v.pid}});
}
bool decode(std::string_view p, hello& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, hello& v) {
    req(j, "version", v.version);
    opt(j, "agent", v.agent);
    opt(j, "pid", v.pid);
  });
}

std::string encode(const exec_request& v) {
  json j = {{"pty", v.pty}, {"cols", v.cols}, {"rows", v.rows}, {"window", v.window}};
  if (!v.argv.empty()) j["argv"] = v.argv;
  if (!v.command.empty()) j["command"] = v.command;
  if (!v.env.empty()) j["env"] = v.env;
  if (!v.cwd.empty()) j["cwd"] = v.cwd;
  if (v.timeout_ms) j["timeout_ms"] = v.timeout_ms;
  if (!v.user.empty()) j["user"] = v.user;
  return cbor(j);
}
bool decode(std::string_view p, exec_request& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, exec_request& v) {
    opt(j, "argv", v.argv);
    opt(j, "command", v.command);
    opt(j, "env", v.env);
    opt(j, "cwd", v.cwd);
    opt(j, "pty", v.pty);
    opt(j, "cols", v.cols);
    opt(j, "rows", v.rows);
    opt(j, "timeout_ms", v.timeout_ms);
    opt(j, "window", v.window);
    opt(j, "user", v.user);
  });
}

std::string encode(const opened& v) { return cbor({{"pid", v.pid}}); }
bool decode(std::string_view p, opened& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, opened& v) { opt(j, "pid", v.pid); });
}

std::string encode(const exit_status& v) {
  return cbor({{"exit_code", v.exit_code}, {"signal", v.signal}, {"timed_out", v.timed_out},
               {"duration_ms", v.duration_ms}});
}
bool decode(std::string_view p, exit_status& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, exit_status& v) {
    req(j, "exit_code", v.exit_code);
    opt(j, "signal", v.signal);
    opt(j, "timed_out", v.timed_out);
    opt(j, "duration_ms", v.duration_ms);
  });
}

std::string encode(const error_reply& v) {
  return cbor({{"code", v.code}, {"message", v.message}});
}
bool decode(std::string_view p, error_reply& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, error_reply& v) {
    req(j, "code", v.code);
    opt(j, "message", v.message);
  });
}

std::string encode(const credit& v) { return cbor({{"bytes", v.bytes}}); }
bool decode(std::string_view p, credit& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, credit& v) { req(j, "bytes", v.bytes); });
}

std::string encode(const signal_request& v) { return cbor({{"signal", v.signal}}); }
bool decode(std::string_view p, signal_request& out, std::string& why) {
  return decode_with(p, out, why,
                     [](const json& j, signal_request& v) { req(j, "signal", v.signal); });
}

std::string encode(const resize_request& v) {
  return cbor({{"cols", v.cols}, {"rows", v.rows}});
}
bool decode(std::string_view p, resize_request& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, resize_request& v) {
    req(j, "cols", v.cols);
    req(j, "rows", v.rows);
  });
}

std::string encode(const file_request& v) {
  json j = {{"path", v.path}, {"recursive", v.recursive}, {"window", v.window}};
  if (v.mode) j["mode"] = *v.mode;
  if (!v.user.empty()) j["user"] = v.user;
  if (!v.to.empty()) j["to"] = v.to;
  if (v.meta) j["meta"] = true;
  if (v.set_meta) j["set_meta"] = *v.set_meta;
  return cbor(j);
}
bool decode(std::string_view p, file_request& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, file_request& v) {
    req(j, "path", v.path);
    opt(j, "recursive", v.recursive);
    if (j.contains("mode") && !j["mode"].is_null()) v.mode = j["mode"].get<uint32_t>();
    opt(j, "window", v.window);
    opt(j, "user", v.user);
    opt(j, "to", v.to);
    opt(j, "meta", v.meta);
    if (j.contains("set_meta") && !j["set_meta"].is_null())
      v.set_meta = j["set_meta"].get<std::map<std::string, std::string>>();
  });
}

std::string encode(const file_info& v) { return cbor(info_json(v)); }
bool decode(std::string_view p, file_info& out, std::string& why) {
  return decode_with(p, out, why, info_fill);
}

std::string encode(const entries& v) {
  json arr = json::array();
  for (auto& e : v.items) arr.push_back(info_json(e));
  return cbor({{"entries", std::move(arr)}});
}
bool decode(std::string_view p, entries& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, entries& v) {
    auto& arr = j.at("entries");
    if (!arr.is_array()) throw std::invalid_argument("entries is not an array");
    for (auto& e : arr) {
      file_info fi;
      info_fill(e, fi);
      v.items.push_back(std::move(fi));
    }
  });
}

std::string encode(const file_result& v) { return cbor({{"size", v.size}}); }
bool decode(std::string_view p, file_result& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, file_result& v) { opt(j, "size", v.size); });
}

std::string encode(const watch_event& v) {
  return cbor({{"event", v.event}, {"path", v.path}});
}
bool decode(std::string_view p, watch_event& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, watch_event& v) {
    req(j, "event", v.event);
    opt(j, "path", v.path);
  });
}

std::string encode(const port_request& v) {
  return cbor({{"port", v.port}, {"window", v.window}});
}
bool decode(std::string_view p, port_request& out, std::string& why) {
  return decode_with(p, out, why, [](const json& j, port_request& v) {
    int64_t port = 0;
    req(j, "port", port);
    if (port < 1 || port > 65535) throw std::invalid_argument("port out of range 1..65535");
    v.port = static_cast<uint16_t>(port);
    opt(j, "window", v.window);
  });
}

}  // namespace warren::agent::proto
