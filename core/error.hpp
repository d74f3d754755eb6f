// core/error.hpp — Warren's one error vocabulary (the codes of API.md) and expected<T>.
// Every layer returns these; only net/ maps them to HTTP statuses. Never holds a pointer or fd.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace warren {

enum class errc : int {
  bad_request = 1,
  unauthorized,
  forbidden,
  not_found,
  conflict,
  payload_too_large,
  too_many_requests,
  internal,
  bad_gateway,
  unavailable,
  timeout,
};

// The snake_case code API.md names ("bad_request", ...).
std::string_view to_string(errc c);

struct error {
  errc code = errc::internal;
  std::string message;

  template <class Inspector>
  friend auto inspect(Inspector& f, error& x) {
    return f(x.code, x.message);
  }
};

inline error make_error(errc c, std::string msg) { return error{c, std::move(msg)}; }

// A minimal expected<T, error>; std::expected is C++23 and Debian 12's g++ 12 lacks it.
template <class T>
class expected {
 public:
  expected(T v) : v_(std::move(v)) {}
  expected(error e) : v_(std::move(e)) {}
  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const error& err() const& { return std::get<1>(v_); }
  error&& err() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, error> v_;
};

struct ok_t {};
using status = expected<ok_t>;
inline status ok() { return ok_t{}; }

}  // namespace warren
