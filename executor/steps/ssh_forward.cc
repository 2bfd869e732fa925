#include "executor/steps/ssh_forward.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace kiln::executor {
namespace {

// A new unix stream socket and the address of `path`.
Result<UniqueFd> UnixSocket(const std::string& path, sockaddr_un* addr) {
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof addr->sun_path) return InvalidArgument("socket path too long: " + path);
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("creating a socket", errno);
  return fd;
}

Result<UniqueFd> Connect(const std::string& path) {
  sockaddr_un addr;
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, UnixSocket(path, &addr));
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoStatus("connecting to the ssh agent at " + path, errno);
  }
  return fd;
}

bool IsSocket(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// Runs argv with `env` added to kiln's environment; returns the exit status.
Result<int> Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env, pid_t* pid_out,
                  bool wait) {
  std::vector<std::string> env_strings;
  auto overridden = [&](const std::string& kv) {
    for (const std::string& e : extra_env) {
      if (kv.compare(0, e.find('=') + 1, e, 0, e.find('=') + 1) == 0) return true;
    }
    return false;
  };
  for (char** e = environ; e && *e; ++e) {
    if (!overridden(*e)) env_strings.push_back(*e);
  }
  for (const std::string& e : extra_env) env_strings.push_back(e);
  std::vector<char*> args, envp;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = ::posix_spawnp(&pid, argv[0].c_str(), &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return ErrnoStatus("starting " + argv[0], rc);
  if (pid_out) *pid_out = pid;
  if (!wait) return 0;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

}  // namespace

Result<SshSource> ParseSshFlag(std::string_view value) {
  SshSource s;
  size_t eq = value.find('=');
  s.id = std::string(value.substr(0, eq));
  if (s.id.empty()) return InvalidArgument("--ssh " + std::string(value) + ": the id is empty (use default or ID=PATH)");
  if (eq != std::string_view::npos) {
    std::string_view rest = value.substr(eq + 1);
    size_t pos = 0;
    while (pos <= rest.size()) {
      size_t end = rest.find(',', pos);
      if (end == std::string_view::npos) end = rest.size();
      if (end > pos) s.paths.emplace_back(rest.substr(pos, end - pos));
      pos = end + 1;
    }
    if (s.paths.empty()) return InvalidArgument("--ssh " + std::string(value) + ": no path after '='");
  }
  return s;
}

SshAgents::SshAgents(std::vector<SshSource> sources, std::map<std::string, std::string> environ)
    : environ_(std::move(environ)) {
  for (SshSource& s : sources) {
    std::string id = s.id;
    sources_[id] = std::move(s);
  }
}

SshAgents::~SshAgents() {
  for (pid_t pid : agents_) {
    ::kill(pid, SIGTERM);
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

Result<std::string> SshAgents::AgentSocket(const std::string& id, const std::string& scratch_dir) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = sockets_.find(id); it != sockets_.end()) return it->second;
  auto src = sources_.find(id);
  if (src == sources_.end()) return NotFound("ssh agent " + id + " was not given (kiln build --ssh " + id + ")");
  const SshSource& s = src->second;
  if (s.paths.empty()) {
    auto sock = environ_.find("SSH_AUTH_SOCK");
    if (sock == environ_.end() || sock->second.empty()) {
      return NotFound("--ssh " + id + ": SSH_AUTH_SOCK is not set (start an agent, or give --ssh " + id +
                      "=PATH to a socket or key)");
    }
    if (!IsSocket(sock->second)) return NotFound("--ssh " + id + ": SSH_AUTH_SOCK " + sock->second + " is not a socket");
    return sockets_[id] = sock->second;
  }
  if (s.paths.size() == 1 && IsSocket(s.paths[0])) return sockets_[id] = s.paths[0];
  for (const std::string& p : s.paths) {
    if (IsSocket(p)) return InvalidArgument("--ssh " + id + ": give either one agent socket or key files, not both");
    if (::access(p.c_str(), R_OK) != 0) return ErrnoStatus("--ssh " + id + ": key " + p, errno);
  }
  // Key files: an agent of kiln's own for this build, holding exactly these keys.
  std::string sock = scratch_dir + "/ssh-agent-" + std::to_string(sockets_.size());
  pid_t pid = 0;
  Result<int> started = Spawn({"ssh-agent", "-D", "-a", sock}, {}, &pid, false);
  if (!started.ok()) {
    return FailedPrecondition("--ssh " + id + " with key files needs ssh-agent (Debian: openssh-client): " +
                              started.status().message());
  }
  agents_.push_back(pid);
  // The socket file appears at bind(), before the agent listens: wait until it answers a connect.
  bool up = false;
  for (int i = 0; i < 300 && !up; ++i) {
    up = IsSocket(sock) && Connect(sock).ok();
    if (!up) ::usleep(10000);
  }
  if (!up) return FailedPrecondition("--ssh " + id + ": ssh-agent did not start");
  for (const std::string& key : s.paths) {
    KILN_ASSIGN_OR_RETURN(int status, Spawn({"ssh-add", "-q", key}, {"SSH_AUTH_SOCK=" + sock}, nullptr, true));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return FailedPrecondition("--ssh " + id + ": ssh-add could not load " + key +
                                " (a key with a passphrase cannot be loaded without a terminal)");
    }
  }
  return sockets_[id] = sock;
}

Result<std::unique_ptr<SshAgentRelay>> SshAgentRelay::Start(const std::string& agent_socket,
                                                            const std::string& listen_path, uid_t uid, gid_t gid,
                                                            mode_t mode) {
  sockaddr_un addr;
  KILN_ASSIGN_OR_RETURN(UniqueFd fd, UnixSocket(listen_path, &addr));
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return ErrnoStatus("binding the ssh relay at " + listen_path, errno);
  }
  if (::listen(fd.get(), 16) != 0) return ErrnoStatus("listening on " + listen_path, errno);
  if (::geteuid() == 0) ::chown(listen_path.c_str(), uid, gid);
  ::chmod(listen_path.c_str(), mode);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return ErrnoStatus("creating a pipe", errno);
  std::unique_ptr<SshAgentRelay> r(
      new SshAgentRelay(agent_socket, listen_path, std::move(fd), UniqueFd(p[0]), UniqueFd(p[1])));
  r->thread_ = std::thread([raw = r.get()] { raw->Loop(); });
  return r;
}

SshAgentRelay::SshAgentRelay(std::string agent, std::string path, UniqueFd listener, UniqueFd stop_read,
                             UniqueFd stop_write)
    : agent_(std::move(agent)),
      path_(std::move(path)),
      listener_(std::move(listener)),
      stop_read_(std::move(stop_read)),
      stop_write_(std::move(stop_write)) {}

SshAgentRelay::~SshAgentRelay() {
  char b = 0;
  while (::write(stop_write_.get(), &b, 1) < 0 && errno == EINTR) {
  }
  if (thread_.joinable()) thread_.join();
  ::unlink(path_.c_str());
}

// One thread relays every connection: poll over the listener, the stop pipe and each pair.
void SshAgentRelay::Loop() {
  struct Pair {
    UniqueFd client, agent;
  };
  std::vector<Pair> pairs;
  char buf[16384];
  for (;;) {
    std::vector<pollfd> fds = {{stop_read_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    for (const Pair& p : pairs) {
      fds.push_back({p.client.get(), POLLIN, 0});
      fds.push_back({p.agent.get(), POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[0].revents) return;
    // Only the pairs polled above have entries in `fds`: one accepted below waits for the next poll
    // (reading it now would block this thread on a socket nothing has been written to).
    const size_t polled = pairs.size();
    if (fds[1].revents & POLLIN) {
      UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (client.valid()) {
        Result<UniqueFd> agent = Connect(agent_);
        if (agent.ok()) pairs.push_back({std::move(client), std::move(agent).value()});
      }
    }
    std::vector<bool> dead(pairs.size(), false);
    for (size_t i = 0; i < polled; ++i) {
      for (int side = 0; side < 2; ++side) {
        const pollfd& pf = fds[2 + 2 * i + side];
        if (!(pf.revents & (POLLIN | POLLHUP | POLLERR))) continue;
        int from = side == 0 ? pairs[i].client.get() : pairs[i].agent.get();
        int to = side == 0 ? pairs[i].agent.get() : pairs[i].client.get();
        ssize_t n = ::read(from, buf, sizeof buf);
        if (n <= 0) {
          dead[i] = true;
          continue;
        }
        for (ssize_t off = 0; off < n;) {
          ssize_t w = ::send(to, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
          if (w < 0 && errno == EINTR) continue;
          if (w <= 0) {
            dead[i] = true;
            break;
          }
          off += w;
        }
      }
    }
    for (size_t i = pairs.size(); i-- > 0;) {
      if (dead[i]) pairs.erase(pairs.begin() + static_cast<long>(i));
    }
  }
}

}  // namespace kiln::executor
