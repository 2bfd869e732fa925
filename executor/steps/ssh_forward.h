// SSH agent forwarding for RUN --mount=type=ssh (`kiln build --ssh`).
//
// `--ssh default` forwards the agent at $SSH_AUTH_SOCK; `--ssh ID=PATH[,PATH...]` forwards the agent
// socket at PATH, or — when the paths are key files — an ssh-agent kiln starts for the build with
// those keys loaded (Debian's openssh-client must be installed). A step that mounts it connects to a
// socket kiln listens on and every connection is relayed to the agent: the step never sees the
// agent's own socket path, keys never enter the rootfs, and the socket exists only for that step.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"
#include "core/unique_fd.h"

namespace kiln::executor {

struct SshSource {
  std::string id;                  ///< "default" unless named
  std::vector<std::string> paths;  ///< agent sockets or key files; empty = $SSH_AUTH_SOCK
};

/// Parses one --ssh value: `default`, `ID`, `ID=PATH[,PATH...]` (BuildKit's syntax).
Result<SshSource> ParseSshFlag(std::string_view value);

/// The agents of a build by id, started (for key files) on first use and stopped with this object.
class SshAgents {
 public:
  SshAgents(std::vector<SshSource> sources, std::map<std::string, std::string> environ);
  ~SshAgents();
  SshAgents(const SshAgents&) = delete;
  SshAgents& operator=(const SshAgents&) = delete;

  bool Has(const std::string& id) const { return sources_.count(id) != 0; }
  /// The agent socket for `id`. For key files, starts `ssh-agent` with a socket in `scratch_dir` and
  /// loads the keys with `ssh-add`. Errors name the id and what is missing.
  Result<std::string> AgentSocket(const std::string& id, const std::string& scratch_dir);

 private:
  std::map<std::string, SshSource> sources_;
  std::map<std::string, std::string> environ_;
  std::map<std::string, std::string> sockets_;  // id → agent socket, once known
  std::vector<pid_t> agents_;                   // ssh-agent processes kiln started
  std::mutex mu_;                               // stages built at once may ask at once
};

/// Relays connections on a new socket at `listen_path` to the agent at `agent_socket` until
/// destroyed (the socket file is removed then).
class SshAgentRelay {
 public:
  /// The socket gets `mode` and, when kiln may, `uid`:`gid` (what the step needs to connect).
  static Result<std::unique_ptr<SshAgentRelay>> Start(const std::string& agent_socket, const std::string& listen_path,
                                                      uid_t uid, gid_t gid, mode_t mode);
  ~SshAgentRelay();
  SshAgentRelay(const SshAgentRelay&) = delete;
  SshAgentRelay& operator=(const SshAgentRelay&) = delete;

 private:
  SshAgentRelay(std::string agent, std::string path, UniqueFd listener, UniqueFd stop_read, UniqueFd stop_write);
  void Loop();

  std::string agent_, path_;
  UniqueFd listener_, stop_read_, stop_write_;
  std::thread thread_;
};

}  // namespace kiln::executor
