// storage/image_ref.cpp — reference grammar of the distribution spec (reference.go): an optional
// registry host[:port], '/'-separated lower-case path components, then :tag and/or @digest.
#include "storage/image_ref.hpp"

#include <algorithm>
#include <regex>

namespace warren::storage {
namespace {

const std::regex host_re(R"((localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?|\[[0-9a-fA-F:]+\](?::[0-9]{1,5})?)");
const std::regex component_re("[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*");
const std::regex tag_re("[A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
const std::regex digest_re("sha256:[0-9a-f]{64}");

// A first component is a registry host when Docker would take it for one.
bool looks_like_host(const std::string& c) {
  return c == "localhost" || c.find('.') != std::string::npos || c.find(':') != std::string::npos ||
         c.front() == '[';
}

error bad(const std::string& ref, const std::string& why) {
  return make_error(errc::bad_request, "bad image reference \"" + ref + "\": " + why);
}

}  // namespace

expected<image_ref> image_ref::parse(const std::string& ref) {
  if (ref.empty() || ref.size() > 512) return bad(ref, "empty or longer than 512 characters");
  image_ref r;
  std::string rest = ref;
  if (auto at = rest.find('@'); at != std::string::npos) {
    r.digest = rest.substr(at + 1);
    rest.erase(at);
    if (!std::regex_match(r.digest, digest_re)) return bad(ref, "the digest must be sha256:<64 lower-case hex>");
  }
  auto slash = rest.rfind('/');
  auto colon = rest.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    r.tag = rest.substr(colon + 1);
    rest.erase(colon);
    if (!std::regex_match(r.tag, tag_re)) return bad(ref, "a tag is [A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
  }
  if (r.tag.empty() && r.digest.empty()) r.tag = "latest";
  std::vector<std::string> parts;
  for (size_t i = 0;;) {
    auto j = rest.find('/', i);
    parts.push_back(rest.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  std::string host;
  if (parts.size() > 1 && looks_like_host(parts.front())) {
    host = parts.front();
    parts.erase(parts.begin());
    if (!std::regex_match(host, host_re)) return bad(ref, "\"" + host + "\" is not a registry host");
  }
  for (auto& p : parts)
    if (!std::regex_match(p, component_re))
      return bad(ref, "\"" + p + "\" is not a name component ([a-z0-9] separated by . _ __ or -)");
  if (host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io") {
    host.clear();
    if (parts.size() == 2 && parts.front() == "library") parts.erase(parts.begin());
  }
  for (auto& p : parts) r.name += (r.name.empty() ? "" : "/") + p;
  if (!host.empty()) r.name = host + "/" + r.name;
  if (r.name.size() > 255) return bad(ref, "the name is longer than 255 characters");
  return r;
}

std::string image_ref::registry() const {
  auto slash = name.find('/');
  if (slash != std::string::npos && looks_like_host(name.substr(0, slash))) return name.substr(0, slash);
  return "docker.io";
}

std::string image_ref::repository() const {
  auto slash = name.find('/');
  if (slash != std::string::npos && looks_like_host(name.substr(0, slash))) return name.substr(slash + 1);
  return slash == std::string::npos ? "library/" + name : name;
}

std::string image_ref::name_dir() const {
  std::string d = name;
  std::replace(d.begin(), d.end(), '/', '+');
  return d;
}

expected<image_ref> image_ref::from_dirs(const std::string& name_dir, const std::string& tag_dir) {
  std::string name = name_dir;
  std::replace(name.begin(), name.end(), '+', '/');
  auto r = parse(name + (tag_dir.rfind('@', 0) == 0 ? tag_dir : ":" + tag_dir));
  if (r && r->name_dir() != name_dir) return make_error(errc::bad_request, "not a normalised image directory");
  return r;
}

}  // namespace warren::storage
