// SshAgentRelay (executor/steps/ssh_forward.h) against a stand-in agent that answers each message
// with the same bytes: every client gets its answer, also clients that connect while others talk
// and while others close. Once, a connection accepted in a poll round was served from `pollfd`
// entries past the end of that round's array: depending on the heap's leftovers the relay thread
// blocked reading a socket nothing was sent on, and every RUN step using the agent hung (seen once
// in the full suite). That read of stale memory does not fail reliably here without a sanitizer;
// these rounds exercise the pattern (connects, closes and traffic in the same round).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "executor/steps/ssh_forward.h"
#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

int Listen(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd, 64), 0);
  return fd;
}

int Connect(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << path;
  return fd;
}

// Reads exactly n bytes within 5 s, or returns what came.
std::string ReadWithin(int fd, size_t n) {
  std::string out;
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    char buf[256];
    ssize_t got = ::read(fd, buf, std::min(sizeof buf, n - out.size()));
    if (got <= 0) break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

// Echoes every connection's bytes back, one thread per connection.
class EchoAgent {
 public:
  explicit EchoAgent(const std::string& path) : listener_(Listen(path)) {
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        workers_.emplace_back([c] {
          char buf[256];
          for (ssize_t n; (n = ::read(c, buf, sizeof buf)) > 0;) {
            if (::write(c, buf, static_cast<size_t>(n)) != n) break;
          }
          ::close(c);
        });
      }
    });
  }
  ~EchoAgent() {
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    thread_.join();
    for (std::thread& w : workers_) w.join();
  }

 private:
  int listener_;
  std::thread thread_;
  std::vector<std::thread> workers_;
};

TEST(SshAgentRelayTest, EveryClientGetsItsAnswerAlsoWhenOthersConnectMeanwhile) {
  kiln::testing::TempDir dir;
  std::string agent_path = dir.Sub("agent.sock"), relay_path = dir.Sub("relay.sock");
  auto agent = std::make_unique<EchoAgent>(agent_path);
  auto relay = SshAgentRelay::Start(agent_path, relay_path, ::geteuid(), ::getegid(), 0600);
  ASSERT_TRUE(relay.ok()) << relay.status().ToString();

  // Rounds of clients: each connects, and talks while the next ones are connecting.
  for (int round = 0; round < 20; ++round) {
    std::vector<int> clients;
    for (int i = 0; i < 8; ++i) {
      clients.push_back(Connect(relay_path));
      std::string msg = "r" + std::to_string(round) + "c" + std::to_string(i);
      ASSERT_EQ(::write(clients.back(), msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
    }
    for (int i = 0; i < 8; ++i) {
      std::string msg = "r" + std::to_string(round) + "c" + std::to_string(i);
      EXPECT_EQ(ReadWithin(clients[i], msg.size()), msg) << "round " << round << " client " << i;
      // A second message on the same connection.
      ASSERT_EQ(::write(clients[i], "again", 5), 5);
      EXPECT_EQ(ReadWithin(clients[i], 5), "again");
    }
    for (int c : clients) ::close(c);
  }
  // Churn next to two long-lived connections: one closes, the next connects and talks at once.
  int a = Connect(relay_path), b = Connect(relay_path);
  for (int i = 0; i < 300; ++i) {
    int c = Connect(relay_path);
    ASSERT_EQ(::write(c, "ping", 4), 4);
    ASSERT_EQ(::write(a, "a", 1), 1);
    EXPECT_EQ(ReadWithin(c, 4), "ping") << "churn " << i;
    EXPECT_EQ(ReadWithin(a, 1), "a");
    ::close(c);
    int d = Connect(relay_path);
    ASSERT_EQ(::write(d, "pong", 4), 4);
    ASSERT_EQ(::write(b, "b", 1), 1);
    EXPECT_EQ(ReadWithin(d, 4), "pong") << "churn " << i;
    EXPECT_EQ(ReadWithin(b, 1), "b");
    ::close(d);
    if (::testing::Test::HasFailure()) break;
  }
  ::close(a);
  ::close(b);
  relay->reset();  // stops and joins the relay thread: it must not be stuck in a read
  EXPECT_NE(::access(relay_path.c_str(), F_OK), 0) << "the relay's socket file stays";
}

}  // namespace
}  // namespace kiln::executor
