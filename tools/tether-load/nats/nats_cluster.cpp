#include "nats_cluster.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <thread>

namespace tether::tools::nats {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// A loopback TCP socket bound to `port` (0: any free port); -1 on failure.
int bind_loopback(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::uint16_t bound_port(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return 0;
  return ntohs(addr.sin_port);
}

bool accepts(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

} // namespace

std::string server_config(std::uint32_t index, const std::vector<server_ports>& ports,
                          const std::string& store_dir) {
  const auto& own = ports.at(index);
  std::string out;
  out += "# written by tether-nats-baseline\n";
  out += "server_name: \"n" + std::to_string(index + 1) + "\"\n";
  out += "listen: \"127.0.0.1:" + std::to_string(own.client) + "\"\n";
  out += "jetstream {\n  store_dir: " + quoted(store_dir) + "\n}\n";
  if (ports.size() > 1) {
    out += "cluster {\n  name: \"tether-bench\"\n";
    out += "  listen: \"127.0.0.1:" + std::to_string(own.cluster) + "\"\n  routes: [\n";
    for (const auto& p : ports)
      out += "    \"nats-route://127.0.0.1:" + std::to_string(p.cluster) + "\"\n";
    out += "  ]\n}\n";
  }
  return out;
}

std::vector<server_ports> choose_ports(std::uint32_t servers, std::uint16_t base_port) {
  std::vector<server_ports> out(servers);
  if (base_port != 0) {
    for (std::uint32_t i = 0; i < servers; ++i) {
      out[i].client = static_cast<std::uint16_t>(base_port + i);
      out[i].cluster = static_cast<std::uint16_t>(base_port + 10 + i);
    }
    return out;
  }
  std::vector<int> held;
  bool ok = true;
  for (std::uint32_t i = 0; i < 2 * servers && ok; ++i) {
    int fd = bind_loopback(0);
    ok = fd >= 0;
    if (ok)
      held.push_back(fd);
  }
  for (std::uint32_t i = 0; ok && i < servers; ++i) {
    out[i].client = bound_port(held[2 * i]);
    out[i].cluster = bound_port(held[2 * i + 1]);
    ok = out[i].client != 0 && out[i].cluster != 0;
  }
  for (int fd : held)
    ::close(fd);
  if (!ok)
    out.clear();
  return out;
}

nats_cluster::nats_cluster(cluster_config cfg) : cfg_(std::move(cfg)) {
  // nop
}

nats_cluster::~nats_cluster() {
  stop();
}

std::string nats_cluster::start() {
  if (cfg_.servers < 1 || cfg_.servers > 9)
    return "between 1 and 9 servers";
  ports_ = choose_ports(cfg_.servers, cfg_.base_port);
  if (ports_.empty())
    return "no free loopback ports";
  auto parent = cfg_.parent_dir;
  if (parent.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    parent = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  std::string pattern = parent + "/tether-nats-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (::mkdtemp(buf.data()) == nullptr)
    return "cannot create a directory under " + parent + ": " + std::strerror(errno);
  dir_ = buf.data();
  for (std::uint32_t i = 0; i < cfg_.servers; ++i) {
    auto name = "n" + std::to_string(i + 1);
    std::error_code ec;
    fs::create_directories(dir_ + "/" + name, ec);
    std::ofstream conf{dir_ + "/" + name + ".conf"};
    conf << server_config(i, ports_, dir_ + "/" + name);
    if (!conf) {
      stop();
      return "cannot write " + dir_ + "/" + name + ".conf";
    }
  }
  for (std::uint32_t i = 0; i < cfg_.servers; ++i) {
    auto error = spawn(i);
    if (!error.empty()) {
      stop();
      return error;
    }
  }
  if (!wait_ports(std::chrono::steady_clock::now() + cfg_.start_timeout)) {
    std::string tail;
    for (std::uint32_t i = 0; i < cfg_.servers; ++i)
      tail += "\n--- n" + std::to_string(i + 1) + ".log\n" + log_tail(i);
    stop();
    return "nats-server did not accept connections within "
           + std::to_string(cfg_.start_timeout.count()) + " ms" + tail;
  }
  return {};
}

std::string nats_cluster::spawn(std::uint32_t index) {
  auto name = "n" + std::to_string(index + 1);
  auto conf = dir_ + "/" + name + ".conf";
  auto log = dir_ + "/" + name + ".log";
  // Everything the child needs is prepared here: after fork() in a threaded process
  // the child may only make async-signal-safe calls.
  std::vector<std::string> args{cfg_.binary, "-c", conf};
  std::vector<char*> argv;
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0)
    return "cannot open " + log + ": " + std::strerror(errno);
  auto parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log_fd);
    return std::string{"fork: "} + std::strerror(errno);
  }
  if (pid == 0) {
    // Own process group: a Ctrl-C at the terminal goes to the benchmark only. Killed by
    // the kernel when the benchmark dies; unblock what the benchmark blocked.
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(log_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      ::dup2(devnull, STDIN_FILENO);
    ::execvp(argv[0], argv.data());
    static const char msg[] = "exec of nats-server failed\n";
    auto ignored = ::write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void) ignored;
    ::_exit(127);
  }
  ::close(log_fd);
  if (pids_.size() <= index)
    pids_.resize(index + 1, -1);
  pids_[index] = pid;
  return {};
}

bool nats_cluster::wait_ports(std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    bool all = true;
    for (std::uint32_t i = 0; i < ports_.size() && all; ++i) {
      int status = 0;
      if (pids_[i] < 0)
        return false;
      if (::waitpid(pids_[i], &status, WNOHANG) == pids_[i]) {
        pids_[i] = -1; // exited and reaped: never signal that pid again
        return false;
      }
      all = accepts(ports_[i].client);
    }
    if (all)
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(50ms);
  }
}

void nats_cluster::stop() {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  for (auto pid : pids_)
    if (pid > 0)
      ::kill(pid, SIGTERM);
  for (auto& pid : pids_) {
    if (pid <= 0)
      continue;
    for (;;) {
      int status = 0;
      auto r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno == ECHILD))
        break;
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    pid = -1;
  }
  pids_.clear();
  if (!dir_.empty() && !cfg_.keep_dir) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  if (!cfg_.keep_dir)
    dir_.clear();
}

bool nats_cluster::signal(std::uint32_t index, int sig) {
  if (index >= pids_.size() || pids_[index] <= 0)
    return false;
  return ::kill(pids_[index], sig) == 0;
}

std::vector<std::string> nats_cluster::urls() const {
  std::vector<std::string> out;
  for (const auto& p : ports_)
    out.push_back("nats://127.0.0.1:" + std::to_string(p.client));
  return out;
}

std::string nats_cluster::log_tail(std::uint32_t index, std::size_t lines) const {
  std::ifstream in{dir_ + "/n" + std::to_string(index + 1) + ".log"};
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines)
      last.pop_front();
  }
  std::string out;
  for (auto& l : last)
    out += l + "\n";
  return out;
}

} // namespace tether::tools::nats
