// net/e2b/envd_files.cpp — envd's HTTP file API: GET /files?path=&username= (raw bytes,
// streamed) and POST /files (application/octet-stream, streamed, gzip accepted; or
// multipart/form-data with one "file" part per file, its filename the path). X-Metadata-<key>
// headers become the files' metadata (user.e2b.<key> xattrs; an upload replaces the set).
// Replies with envd's shapes: a list of {name, type, path, metadata}; errors as
// {"code": <status>, "message": "..."}.
#include <zlib.h>

#include "net/e2b/envd.hpp"
#include "net/file_stream.hpp"

namespace warren::net::e2b {

using json = nlohmann::json;

namespace {

constexpr size_t max_multipart = 64 * 1024 * 1024;  // multipart is read whole; octet-stream streams

http_response files_error(const error& e) {
  http_response r;
  r.status = http_status(e.code);
  if (e.code == errc::payload_too_large && e.message.find("no space") != std::string::npos) r.status = 507;
  r.body = json{{"code", r.status}, {"message", e.message}}.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

void reply_error(const exchange_ptr& ex, const error& e) { ex->respond(files_error(e)); }

std::string base_name(const std::string& p) {
  auto s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

json written(const std::string& path, const std::map<std::string, std::string>& meta) {
  json j = {{"name", base_name(path)}, {"type", "file"}, {"path", path}};
  if (!meta.empty()) j["metadata"] = meta;
  return j;
}

// X-Metadata-<key>: <value> headers → {key (lower case): value}; the first value of a key wins.
std::map<std::string, std::string> metadata_headers(const http_request& r) {
  std::map<std::string, std::string> out;
  for (auto& [k, v] : r.headers)  // names are lower-cased already
    if (k.size() > 11 && k.compare(0, 11, "x-metadata-") == 0) out.emplace(k.substr(11), v);
  return out;
}

// Streaming gunzip of an upload (Content-Encoding: gzip), bounded per chunk.
class gunzip {
 public:
  gunzip() { ok_ = inflateInit2(&z_, 15 + 16) == Z_OK; }
  ~gunzip() { inflateEnd(&z_); }
  gunzip(const gunzip&) = delete;
  gunzip& operator=(const gunzip&) = delete;

  expected<std::string> operator()(std::string_view in, bool last) {
    if (!ok_) return make_error(errc::internal, "zlib could not start");
    std::string out;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z_.avail_in = static_cast<uInt>(in.size());
    char buf[65536];
    while (z_.avail_in > 0 && !done_) {
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = sizeof buf;
      int rc = inflate(&z_, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
        return make_error(errc::bad_request, "the gzip body is corrupt");
      out.append(buf, sizeof buf - z_.avail_out);
      if (rc == Z_STREAM_END) done_ = true;
      if (rc == Z_BUF_ERROR) break;
    }
    if (last && !done_) return make_error(errc::bad_request, "the gzip body is truncated");
    return out;
  }

 private:
  z_stream z_{};
  bool ok_ = false, done_ = false;
};

// One part of a multipart body: its filename and bytes.
struct part {
  std::string filename, data;
};

// RFC 7578 multipart/form-data: the parts named "file".
expected<std::vector<part>> parse_multipart(const std::string& body, std::string_view content_type) {
  auto b = content_type.find("boundary=");
  if (b == std::string_view::npos) return make_error(errc::bad_request, "multipart body without a boundary");
  std::string boundary(content_type.substr(b + 9));
  if (auto semi = boundary.find(';'); semi != std::string::npos) boundary.resize(semi);
  if (boundary.size() >= 2 && boundary.front() == '"') boundary = boundary.substr(1, boundary.size() - 2);
  std::string delim = "--" + boundary;
  std::vector<part> out;
  size_t pos = body.find(delim);
  if (pos == std::string::npos) return make_error(errc::bad_request, "multipart body without its boundary");
  for (;;) {
    pos += delim.size();
    if (body.compare(pos, 2, "--") == 0) break;  // the closing delimiter
    if (body.compare(pos, 2, "\r\n") != 0) return make_error(errc::bad_request, "malformed multipart body");
    pos += 2;
    auto head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string::npos) return make_error(errc::bad_request, "malformed multipart part headers");
    std::string head = body.substr(pos, head_end - pos);
    auto next = body.find("\r\n" + delim, head_end + 4);
    if (next == std::string::npos) return make_error(errc::bad_request, "unterminated multipart part");
    part p;
    p.data = body.substr(head_end + 4, next - head_end - 4);
    std::string lower = head;
    for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    bool is_file = lower.find("name=\"file\"") != std::string::npos;
    if (auto f = lower.find("filename=\""); f != std::string::npos) {
      auto start = f + 10;
      auto end = head.find('"', start);
      if (end != std::string::npos) p.filename = head.substr(start, end - start);
    }
    if (is_file) out.push_back(std::move(p));
    pos = next + 2;
  }
  return out;
}

// Writes the parts one after another (each a stream of chunks to the agent), then replies.
struct multipart_writer : std::enable_shared_from_this<multipart_writer> {
  envd_call c;
  std::vector<std::pair<std::string, std::string>> files;  // resolved path, data
  std::map<std::string, std::string> meta;
  size_t i = 0;
  json result = json::array();

  void next() {
    if (i == files.size()) return reply_json(c.ex, result);
    auto self = shared_from_this();
    auto& [path, data] = files[i];
    agent::write_options opts;
    opts.user = c.user;
    opts.meta = meta;  // an upload replaces the file's whole metadata set
    auto w = c.link->agent->write_file(path, opts, [self, path = path](expected<uint64_t> n) {
      if (!n) return reply_error(self->c.ex, n.err());
      self->result.push_back(written(path, self->meta));
      ++self->i;
      self->next();
    });
    // Chunks of at most 1 MiB, each sent when the previous left (the agent's credit paces them).
    auto chunks = std::make_shared<std::vector<std::string>>();
    for (size_t off = 0; off < data.size(); off += 1 << 20) chunks->push_back(data.substr(off, 1 << 20));
    data.clear();
    auto k = std::make_shared<size_t>(0);
    auto send = std::make_shared<std::function<void()>>();
    *send = [w, chunks, k, send] {
      if (*k == chunks->size()) {
        w->finish();
        *send = nullptr;  // breaks the self-reference
        return;
      }
      auto& ch = (*chunks)[(*k)++];
      w->write(std::move(ch), [send](status st) {
        if (st && *send) (*send)();
      });
    };
    (*send)();
  }
};

void download(const envd_call& c) {
  auto it = c.req().query.find("path");
  if (it == c.req().query.end() || it->second.empty())
    return reply_error(c.ex, make_error(errc::bad_request, "query parameter \"path\" is required"));
  auto path = c.resolve(it->second);
  auto ex = c.ex;
  auto link = c.link;
  link->agent->stat(path, [ex, link, path](expected<agent::file_info> f) {
    if (!f) return reply_error(ex, f.err());
    if (f->type == "dir") return reply_error(ex, make_error(errc::bad_request, path + " is a directory"));
    send_file(ex, link, path, "application/octet-stream",
              {{"Content-Disposition", "attachment; filename=\"" + base_name(path) + "\""}}, files_error);
  });
}

void upload(const envd_call& c) {
  const auto& req = c.req();
  auto ct = req.header("content-type");
  auto enc = req.header("content-encoding");
  bool gz = enc == "gzip";
  if (!enc.empty() && enc != "identity" && !gz)
    return reply_error(c.ex, make_error(errc::bad_request, "Content-Encoding " + std::string(enc) +
                                                               " is not supported (gzip or none)"));
  auto meta = metadata_headers(req);
  if (ct.substr(0, 24) == "application/octet-stream") {
    auto it = req.query.find("path");
    if (it == req.query.end() || it->second.empty())
      return reply_error(c.ex, make_error(errc::bad_request, "query parameter \"path\" is required"));
    auto path = c.resolve(it->second);
    agent::write_options opts;
    opts.user = c.user;
    opts.meta = meta;
    auto ex = c.ex;
    chunk_filter filter;
    if (gz) {
      auto z = std::make_shared<gunzip>();
      filter = [z](std::string_view chunk, bool last) { return (*z)(chunk, last); };
    }
    return receive_file(ex, c.link, path, opts, [ex, path, meta](expected<uint64_t> n) {
      if (!n) return reply_error(ex, n.err());
      reply_json(ex, json::array({written(path, meta)}));
    }, std::move(filter));
  }
  if (gz)
    return reply_error(c.ex, make_error(errc::bad_request, "gzip is taken for application/octet-stream uploads only"));
  if (ct.substr(0, 19) != "multipart/form-data")
    return reply_error(c.ex, make_error(errc::bad_request,
                                        "POST /files takes multipart/form-data or application/octet-stream"));
  c.ex->read_body(max_multipart, [c] {
    auto parts = parse_multipart(c.req().body, c.req().header("content-type"));
    if (!parts) return reply_error(c.ex, parts.err());
    if (parts->empty()) return reply_error(c.ex, make_error(errc::bad_request, "no \"file\" part in the body"));
    auto w = std::make_shared<multipart_writer>();
    w->c = c;
    w->meta = metadata_headers(c.req());
    auto q = c.req().query.find("path");
    for (auto& p : *parts) {
      std::string target = !p.filename.empty() ? p.filename : q != c.req().query.end() ? q->second : "";
      if (target.empty())
        return reply_error(c.ex, make_error(errc::bad_request, "a file part without a path (filename)"));
      w->files.emplace_back(c.resolve(target), std::move(p.data));
    }
    w->next();
  });
}

}  // namespace

void serve_files(const envd_call& c) {
  const auto& m = c.req().method;
  if (m == "GET" || m == "HEAD") return download(c);
  if (m == "POST") return upload(c);
  reply_error(c.ex, make_error(errc::bad_request, "/files takes GET or POST"));
}

}  // namespace warren::net::e2b
