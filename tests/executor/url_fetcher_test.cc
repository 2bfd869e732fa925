#include "executor/steps/url_fetcher.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "tests/testing/temp_dir.h"

namespace kiln::executor {
namespace {

using testing::TempDir;
using testing::WriteFile;

TEST(UrlHelpersTest, NamesAndRedaction) {
  EXPECT_EQ(UrlBaseName("https://h/a/b/tool.tar.gz?x=1#f"), "tool.tar.gz");
  EXPECT_EQ(UrlBaseName("https://h/a/"), "");
  EXPECT_EQ(UrlBaseName("https://h"), "");
  EXPECT_EQ(RedactUrl("https://user:pw@h.example/p/f?token=s#x"), "https://h.example/p/f");
  EXPECT_EQ(ContentDispositionFilename("attachment; filename=\"report.csv\""), "report.csv");
  EXPECT_EQ(ContentDispositionFilename("attachment; FileName=../../etc/passwd"), "passwd");
  EXPECT_EQ(ContentDispositionFilename("inline"), "");
}

// A python3 http.server on 127.0.0.1 serving a directory, with one route that sets
// Content-Disposition and one that fails; killed at the end.
class HttpServer {
 public:
  explicit HttpServer(const std::string& dir) {
    WriteFile(dir + "/server.py",
              "import http.server, socketserver, sys, os\n"
              "os.chdir(sys.argv[1])\n"
              "class H(http.server.SimpleHTTPRequestHandler):\n"
              "    def log_message(self, *a): pass\n"
              "    def do_GET(self):\n"
              "        if self.path.startswith('/disp'):\n"
              "            self.send_response(200); self.send_header('Content-Disposition', 'attachment; filename=\"named.bin\"')\n"
              "            self.send_header('Content-Length', '3'); self.end_headers(); self.wfile.write(b'abc'); return\n"
              "        if self.path.startswith('/redirect'):\n"
              "            self.send_response(302); self.send_header('Location', '/data.txt'); self.end_headers(); return\n"
              "        if self.path.startswith('/boom'):\n"
              "            self.send_error(500); return\n"
              "        return super().do_GET()\n"
              "s = socketserver.TCPServer(('127.0.0.1', 0), H)\n"
              "open(sys.argv[2], 'w').write(str(s.server_address[1]))\n"
              "s.serve_forever()\n");
    port_file_ = dir + "/port";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execlp("python3", "python3", (dir + "/server.py").c_str(), dir.c_str(), port_file_.c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 100 && port_.empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      FILE* f = ::fopen(port_file_.c_str(), "r");
      if (!f) continue;
      char buf[16] = {};
      if (::fgets(buf, sizeof buf, f)) port_ = buf;
      ::fclose(f);
    }
  }
  ~HttpServer() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string url(const std::string& path) const { return "http://127.0.0.1:" + port_ + path; }
  bool ready() const { return !port_.empty(); }

 private:
  pid_t pid_ = -1;
  std::string port_file_, port_;
};

TEST(CurlUrlFetcherTest, DownloadsFollowsRedirectsAndFails) {
  TempDir t;
  WriteFile(t.Sub("www/data.txt"), "hello over http");
  HttpServer server(t.Sub("www"));
  ASSERT_TRUE(server.ready());
  auto fetcher = NewCurlUrlFetcher();

  StringWriter out;
  auto r = fetcher->Fetch(server.url("/data.txt?sig=abc"), &out);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(out.data(), "hello over http");
  EXPECT_EQ(r->filename, "data.txt");
  EXPECT_TRUE(r->last_modified.has_value());  // http.server sends Last-Modified for files

  StringWriter disp;
  r = fetcher->Fetch(server.url("/disp/whatever"), &disp);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->filename, "named.bin");
  EXPECT_EQ(disp.data(), "abc");

  StringWriter redirected;
  r = fetcher->Fetch(server.url("/redirect"), &redirected);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(redirected.data(), "hello over http");
  EXPECT_EQ(r->filename, "data.txt");

  StringWriter missing;
  r = fetcher->Fetch(server.url("/nope.txt?token=secret"), &missing);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("HTTP 404"), std::string::npos);
  EXPECT_EQ(r.status().message().find("secret"), std::string::npos);
  EXPECT_TRUE(missing.data().empty());

  StringWriter boom;
  r = fetcher->Fetch(server.url("/boom"), &boom);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().temporary());
}

TEST(CurlUrlFetcherTest, ConnectionRefusedIsAnError) {
  auto fetcher = NewCurlUrlFetcher();
  StringWriter out;
  auto r = fetcher->Fetch("http://127.0.0.1:1/x", &out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace kiln::executor
