// tests/unit/vmm/agent/agent_harness.cpp — see agent_harness.hpp.
#include "agent_harness.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace agent_test {

agent_process::agent_process() {
  char tmpl[] = "/tmp/warren-agent-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir = tmpl;
  socket = dir + "/agent.sock";
  root = dir + "/root";
  ::mkdir(root.c_str(), 0755);
  pid = fork();
  if (pid == 0) {
    execl(WARREN_AGENT_BIN, "warren-agent", "--listen", socket.c_str(), "--root", root.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  for (int i = 0; i < 500; ++i) {
    struct stat st{};
    if (::stat(socket.c_str(), &st) == 0) return;
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error("warren-agent did not create its socket");
}

agent_process::~agent_process() {
  if (pid > 0) {
    ::kill(pid, SIGTERM);
    waitpid(pid, nullptr, 0);
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

long agent_process::rss_kib() const {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(5ms);
  }
  return done();
}

std::shared_ptr<warren::agent::client> connect(boost::asio::io_context& io,
                                               const std::string& socket) {
  std::shared_ptr<warren::agent::client> c;
  bool finished = false;
  warren::agent::client::connect(io, socket, [&](auto r) {
    finished = true;
    if (r) c = *r;
  });
  run_until(io, [&] { return finished; }, 10s);
  return c;
}

exec_result run(boost::asio::io_context& io, warren::agent::client& c,
                warren::agent::exec_request req, const std::string& stdin_data,
                std::chrono::milliseconds timeout) {
  auto r = std::make_shared<exec_result>();
  warren::agent::exec_callbacks cb;
  cb.on_start = [r](int64_t pid) { r->pid = pid; };
  cb.on_stdout = [r](std::string_view s) { r->out.append(s); };
  cb.on_stderr = [r](std::string_view s) { r->err.append(s); };
  cb.on_exit = [r](const warren::agent::exit_info& x) { r->exit = x; };
  cb.on_error = [r](const warren::error& e) { r->error = e; };
  auto p = c.exec(std::move(req), std::move(cb));
  if (!stdin_data.empty()) p->write_stdin(stdin_data);
  p->close_stdin();
  run_until(io, [&] { return r->exit || r->error; }, timeout);
  return *r;
}

bool pid_alive(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  if (s.empty()) return false;
  auto close = s.rfind(')');
  return close != std::string::npos && s.size() > close + 2 && s[close + 2] != 'Z';
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f << data;
}

}  // namespace agent_test
