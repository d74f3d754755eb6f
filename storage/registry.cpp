// storage/registry.cpp — see registry.hpp.
#include "storage/registry.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "storage/image_ref.hpp"

namespace warren::storage {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* manifest_accept =
    "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

struct response {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// Where a blob download goes: a 2xx body into the file (at most `limit` bytes, the size the
// manifest gives), any other body (a 401's, an error's) into the response.
struct sink {
  response* r;
  FILE* file;
  uint64_t limit;
  bool resumed;  // asked for a range: a whole body (200) means starting over
  uint64_t written = 0;
  bool over = false, restart = false;
};

size_t on_header(char* p, size_t size, size_t n, void* ud) {
  auto* r = static_cast<response*>(ud);
  std::string line(p, size * n);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string k = line.substr(0, colon), v = line.substr(colon + 1);
    for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.erase(0, 1);
    while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
    r->headers[k] = v;
  } else if (line.rfind("HTTP/", 0) == 0) {
    r->headers.clear();  // a new response (after a redirect or 100)
    auto sp = line.find(' ');
    r->status = sp == std::string::npos ? 0 : std::atol(line.c_str() + sp + 1);
  }
  return size * n;
}

size_t on_body(char* p, size_t size, size_t n, void* ud) {
  static_cast<response*>(ud)->body.append(p, size * n);
  return size * n;
}

size_t on_file(char* p, size_t size, size_t n, void* ud) {
  auto* s = static_cast<sink*>(ud);
  if (s->r->status < 200 || s->r->status > 299) return on_body(p, size, n, s->r);
  if (s->resumed && s->r->status == 200) {
    s->restart = true;
    return 0;
  }
  if (s->written + size * n > s->limit) {
    s->over = true;
    return 0;  // curl stops: CURLE_WRITE_ERROR
  }
  s->written += size * n;
  return std::fwrite(p, size, n, s->file) * size;
}

void curl_global() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string to_hex(const unsigned char* md, unsigned len) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 15]);
  }
  return out;
}

std::string hex_sha256_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  char buf[1 << 16];
  while (f.read(buf, sizeof buf) || f.gcount() > 0) EVP_DigestUpdate(ctx, buf, static_cast<size_t>(f.gcount()));
  unsigned char md[32];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  return to_hex(md, len);
}

std::string hex_sha256(const std::string& data) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return to_hex(md, len);
}

bool is_loopback(const std::string& host) {
  auto h = host.substr(0, host.rfind(':') == std::string::npos || host[0] == '[' ? host.size() : host.rfind(':'));
  return h == "localhost" || h.rfind("127.", 0) == 0 || h == "[::1]";
}

// The parameters of a WWW-Authenticate challenge: scheme, then key="value" pairs.
std::pair<std::string, std::map<std::string, std::string>> parse_challenge(const std::string& h) {
  std::map<std::string, std::string> kv;
  auto sp = h.find(' ');
  std::string scheme = h.substr(0, sp);
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t i = sp == std::string::npos ? h.size() : sp + 1;
  while (i < h.size()) {
    auto eq = h.find('=', i);
    if (eq == std::string::npos) break;
    std::string k = h.substr(i, eq - i);
    while (!k.empty() && (k.front() == ' ' || k.front() == ',')) k.erase(0, 1);
    std::string v;
    size_t j = eq + 1;
    if (j < h.size() && h[j] == '"') {
      auto end = h.find('"', j + 1);
      v = h.substr(j + 1, end == std::string::npos ? std::string::npos : end - j - 1);
      j = end == std::string::npos ? h.size() : end + 1;
    } else {
      auto end = h.find(',', j);
      v = h.substr(j, end == std::string::npos ? std::string::npos : end - j);
      j = end == std::string::npos ? h.size() : end;
    }
    kv[k] = v;
    i = j + 1;
  }
  return {scheme, kv};
}

class client {
 public:
  client(std::string registry, std::string repository, const registry_options& opts)
      : registry_(std::move(registry)), repo_(std::move(repository)), opts_(opts) {
    curl_global();
    host_ = registry_ == "docker.io" ? "registry-1.docker.io" : registry_;
    bool plain = std::find(opts.insecure.begin(), opts.insecure.end(), registry_) != opts.insecure.end();
    // A loopback registry is tried over HTTPS (verified) and spoken to in plain HTTP only when it
    // does not speak TLS at all.
    may_fall_back_ = !plain && is_loopback(registry_);
    base_ = (plain ? "http://" : "https://") + host_ + "/v2/" + repo_;
    if (auto it = opts.credentials.find(registry_); it != opts.credentials.end()) creds_ = it->second;
  }

  // GET with the registry's auth; a 2xx body into `out` (resuming at byte `from`), or the
  // returned body.
  expected<response> get(const std::string& path, const std::string& accept, sink* out = nullptr, long from = 0) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto r = once(base_ + path, accept, out, from);
      if (!r && may_fall_back_ && last_code_ == CURLE_SSL_CONNECT_ERROR) {  // plain HTTP on loopback
        base_ = "http://" + host_ + "/v2/" + repo_;
        may_fall_back_ = false;
        r = once(base_ + path, accept, out, from);
      }
      if (!r) return r;
      may_fall_back_ = false;
      if (r->status != 401 || attempt == 1) return r;
      auto challenge = r->headers["www-authenticate"];
      if (auto st = authenticate(challenge); !st) return st.err();
    }
    return make_error(errc::internal, "unreachable");
  }

  const std::string& where() const { return base_; }
  const std::string& registry() const { return registry_; }
  bool has_credentials() const { return creds_.has_value(); }
  CURLcode last_code() const { return last_code_; }

 private:
  expected<response> once(const std::string& url, const std::string& accept, sink* out, long from,
                          bool with_auth = true, const std::string* basic = nullptr) {
    CURL* c = curl_easy_init();
    if (!c) return make_error(errc::internal, "curl_easy_init failed");
    response r;
    char why[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, why);
    curl_slist* hdrs = nullptr;
    if (!accept.empty()) hdrs = curl_slist_append(hdrs, ("Accept: " + accept).c_str());
    if (with_auth && !auth_.empty()) hdrs = curl_slist_append(hdrs, ("Authorization: " + auth_).c_str());
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);  // blobs redirect to storage
    curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);  // never our Authorization to another host
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);  // a registry that stalls 60 s has died
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "warren-image-pull/1");
    if (!opts_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, opts_.ca_file.c_str());
    if (basic) {
      curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
      curl_easy_setopt(c, CURLOPT_USERPWD, basic->c_str());
    }
    if (out) {
      out->r = &r;
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_file);
      curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
      if (from > 0) curl_easy_setopt(c, CURLOPT_RESUME_FROM, from);
    } else {
      curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
      curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    last_code_ = rc;
    if (out) out->r = nullptr;
    if (rc == CURLE_OK) return r;
    std::string detail = why[0] ? why : curl_easy_strerror(rc);
    if (rc == CURLE_PEER_FAILED_VERIFICATION)
      return make_error(errc::bad_gateway, "registry " + registry_ + ": TLS certificate not trusted (" + detail +
                                               "); give its CA as ca_file in registries.json (" + url + ")");
    return make_error(errc::bad_gateway, "registry " + registry_ + ": " + detail + " (" + url + ")");
  }

  status authenticate(const std::string& challenge) {
    auto [scheme, kv] = parse_challenge(challenge);
    std::string userpwd = creds_ ? creds_->first + ":" + creds_->second : "";
    if (scheme == "basic") {
      if (!creds_) return make_error(errc::unauthorized, "registry " + registry_ + " needs credentials (basic auth)");
      auth_ = "Basic " + base64(userpwd);
      return ok();
    }
    if (scheme != "bearer" || kv["realm"].empty())
      return make_error(errc::unauthorized, "registry " + registry_ + ": unsupported auth challenge \"" + challenge + "\"");
    std::string url = kv["realm"] + "?service=" + escape(kv["service"]);
    url += "&scope=" + escape(kv.count("scope") ? kv["scope"] : "repository:" + repo_ + ":pull");
    auto r = once(url, "application/json", nullptr, 0, false, creds_ ? &userpwd : nullptr);
    if (!r) return r.err();
    if (r->status == 401 || r->status == 403)
      return make_error(errc::unauthorized, "registry " + registry_ + " refused a pull token for " + repo_);
    auto j = json::parse(r->body, nullptr, false);
    std::string token = j.is_object() ? j.value("token", j.value("access_token", std::string())) : "";
    if (r->status != 200 || token.empty())
      return make_error(errc::bad_gateway, "registry " + registry_ + ": no token from " + kv["realm"]);
    auth_ = "Bearer " + token;
    return ok();
  }

  static std::string escape(const std::string& s) {
    char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
    std::string out = e ? e : "";
    curl_free(e);
    return out;
  }
  static std::string base64(const std::string& s) {
    std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
    out.resize(static_cast<size_t>(n));
    return out;
  }

  std::string registry_, repo_, host_, base_;
  const registry_options& opts_;
  std::optional<std::pair<std::string, std::string>> creds_;
  std::string auth_;  // the Authorization header value once a challenge was answered
  bool may_fall_back_ = false;  // to plain HTTP, until the registry has answered once
  CURLcode last_code_ = CURLE_OK;
};

bool is_index(const std::string& media) {
  return media == "application/vnd.oci.image.index.v1+json" ||
         media == "application/vnd.docker.distribution.manifest.list.v2+json";
}

std::string error_of(const response& r) {
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("errors") && j["errors"].is_array() && !j["errors"].empty())
    return j["errors"][0].value("message", std::string()) + " (" + j["errors"][0].value("code", std::string()) + ")";
  return "HTTP " + std::to_string(r.status);
}

// The manifest `ref` names (a tag or digest), its digest verified when asked by digest.
expected<std::pair<json, std::string>> fetch_manifest(client& c, const std::string& ref) {
  auto r = c.get("/manifests/" + ref, manifest_accept);
  if (!r) return r.err();
  if (r->status == 404) return make_error(errc::not_found, "no manifest " + ref + " at " + c.where());
  if (r->status == 401 || r->status == 403)
    return make_error(errc::unauthorized, "pull of " + c.where() + " refused: " + error_of(*r) +
                                              (c.has_credentials() ? "" : " (no credentials for " + c.registry() + " in registries.json)"));
  if (r->status != 200) return make_error(errc::bad_gateway, "manifest " + ref + ": " + error_of(*r));
  std::string digest = "sha256:" + hex_sha256(r->body);
  if (ref.rfind("sha256:", 0) == 0 && ref != digest)
    return make_error(errc::bad_gateway, "manifest " + ref + " has digest " + digest + ": corrupt or tampered");
  auto j = json::parse(r->body, nullptr, false);
  if (!j.is_object()) return make_error(errc::bad_gateway, "manifest " + ref + " is not JSON");
  if (!j.contains("mediaType") && r->headers.count("content-type")) j["mediaType"] = r->headers["content-type"];
  return std::make_pair(j, digest);
}

}  // namespace

expected<registry_options> load_registry_options(const std::string& path) {
  registry_options o;
  std::ifstream f(path);
  if (!f) return o;
  auto j = json::parse(f, nullptr, false);
  if (!j.is_object()) return make_error(errc::bad_request, path + " is not a JSON object");
  try {
    auto creds = j.value("credentials", json::object());
    for (auto& [host, c] : creds.items())
      o.credentials[host] = {c.at("username").get<std::string>(), c.at("password").get<std::string>()};
    o.insecure = j.value("insecure", std::vector<std::string>{});
    o.ca_file = j.value("ca_file", std::string());
  } catch (const json::exception& e) {
    return make_error(errc::bad_request, path + ": " + e.what());
  }
  return o;
}

expected<std::string> pull_image(image_store& store, const std::string& ref_text, const registry_options& opts,
                                 const std::function<void(const std::string&)>& progress) {
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  auto ref = image_ref::parse(ref_text);
  if (!ref) return ref.err();
  client c(ref->registry(), ref->repository(), opts);
  auto m = fetch_manifest(c, ref->digest.empty() ? ref->tag : ref->digest);
  if (!m) return m.err();
  say("pull " + ref->str() + " from " + c.where());  // https://, or http:// once known plain
  auto [manifest, digest] = *m;
  if (is_index(manifest.value("mediaType", std::string()))) {
    std::string pick;
    for (auto& e : manifest.value("manifests", json::array())) {
      auto p = e.value("platform", json::object());
      if (p.value("os", "") == "linux" && p.value("architecture", "") == "amd64") {
        pick = e.value("digest", "");
        break;
      }
    }
    if (pick.empty()) return make_error(errc::not_found, ref->str() + " has no linux/amd64 image");
    say("index: linux/amd64 is " + pick);
    auto inner = fetch_manifest(c, pick);
    if (!inner) return inner.err();
    std::tie(manifest, digest) = *inner;
  }
  if (!manifest.contains("layers") || !manifest["layers"].is_array())
    return make_error(errc::bad_gateway, "manifest of " + ref->str() + " has no layers (schema 1 is not supported)");
  // Held (shared) until the image is installed: an image removal does not collect these blobs.
  int lock = store.blobs_lock(false, true);
  if (lock < 0) return make_error(errc::internal, "cannot lock " + store.blob_dir());
  std::unique_ptr<int, void (*)(int*)> unlock(&lock, [](int* fd) { close(*fd); });
  std::vector<std::string> paths, digests;
  size_t i = 0, n = manifest["layers"].size();
  for (auto& l : manifest["layers"]) {
    ++i;
    auto d = l.value("digest", std::string());
    if (d.rfind("sha256:", 0) != 0 || d.size() != 71 || d.find_first_not_of("0123456789abcdef", 7) != std::string::npos)
      return make_error(errc::bad_gateway, "layer digest \"" + d + "\" is not sha256");
    auto hex = d.substr(7);
    auto path = store.blob_dir() + "/" + hex;
    paths.push_back(path);
    digests.push_back(d);
    auto what = "layer " + std::to_string(i) + "/" + std::to_string(n) + " " + d.substr(0, 19);
    if (fs::exists(path)) {
      say(what + ": already here");
      continue;
    }
    bool sized = l.contains("size") && l["size"].is_number_unsigned();
    uint64_t size = sized ? l["size"].get<uint64_t>() : UINT64_MAX;
    auto part = path + ".part";
    std::error_code ec;
    expected<response> r = make_error(errc::internal, "no attempt");
    for (int attempt = 0; attempt < 2; ++attempt) {
      uint64_t from = fs::exists(part, ec) ? fs::file_size(part, ec) : 0;
      if (from > size) from = 0;  // not a prefix of this blob
      FILE* f = std::fopen(part.c_str(), from ? "ab" : "wb");
      if (!f) return make_error(errc::internal, "cannot write " + part);
      say(what + ": " + (from ? "resuming at " + std::to_string(from) + " bytes" : "downloading") +
          (sized ? " (" + std::to_string(size) + " bytes)" : ""));
      sink out{nullptr, f, size - from, from > 0};
      r = c.get("/blobs/" + d, "", &out, static_cast<long>(from));
      std::fclose(f);
      // A registry that ignores the range sends it all again (200) or refuses it (416): start over.
      if (from > 0 && (out.restart || c.last_code() == CURLE_RANGE_ERROR || (r && r->status == 416))) {
        fs::remove(part, ec);
        continue;
      }
      if (out.over) {
        fs::remove(part, ec);
        return make_error(errc::bad_gateway, "blob " + d + " is larger than the " + std::to_string(size) +
                                                 " bytes its manifest says: corrupt or tampered registry");
      }
      if (!r) {  // what arrived stays as the .part: the next pull resumes it
        if (from + out.written == 0) fs::remove(part, ec);
        if (r.err().code != errc::bad_gateway || from + out.written == 0) return r.err();
        return make_error(errc::bad_gateway, "blob " + d + ": download interrupted after " +
                                                 std::to_string(from + out.written) + " bytes (" + r.err().message +
                                                 "); the next pull resumes it");
      }
      break;
    }
    if (r->status != 200 && r->status != 206) {
      fs::remove(part, ec);
      if (r->status == 401 || r->status == 403) return make_error(errc::unauthorized, "blob " + d + " refused: " + error_of(*r));
      return make_error(errc::bad_gateway, "blob " + d + ": " + error_of(*r));
    }
    if (hex_sha256_file(part) != hex) {
      fs::remove(part, ec);
      return make_error(errc::bad_gateway, "blob " + d + " does not match its digest: corrupt download or registry");
    }
    fs::rename(part, path, ec);
    if (ec) return make_error(errc::internal, "cannot store blob " + d + ": " + ec.message());
  }
  say("unpacking " + std::to_string(n) + " layer(s)");
  if (auto st = store.install(*ref, paths, {"pull " + ref->str(), digest, digests}); !st) return st.err();
  say("pulled " + ref->str() + " (" + digest + ")");
  return ref->str();
}

}  // namespace warren::storage
