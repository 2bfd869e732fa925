// layer_bench: times kiln's layer writing (tar+gzip, tar+zstd, tar) and extraction on a generated
// tree, next to the machine's floor on the same tree (tar | gzip, tar | pigz, tar | zstd -T, tar,
// sha256sum, tar -x), and prints MB/s, seconds, the ratio to the floor and peak RSS.
//
// Every measurement runs in a fresh process (this binary re-executed with --child, or bash for the
// floors), so that wall time and peak RSS (wait4's ru_maxrss) belong to that measurement alone.
// The page cache is warm for everyone: the tree was just written.
//
//   layer_bench [--size MB] [--files N] [--dir PATH | --tmpfs] [--runs N] [--seed S] [--keep]
//               [--gzip-level L] [--no-floors]
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/io.h"
#include "layers/layer_writer.h"
#if __has_include("layers/extract.h")
#include "layers/extract.h"
#define KILN_BENCH_HAVE_EXTRACT 1
#endif

namespace kiln::bench {
namespace {


struct Flags {
  uint64_t size_mb = 1024;
  uint64_t files = 0;  // 0: 50,000 per GB
  std::string dir;
  bool tmpfs = false;
  bool keep = false;
  bool floors = true;
  int runs = 1;
  uint64_t seed = 1;
  int gzip_level = 0;
};

[[noreturn]] void Usage(const char* msg) {
  std::fprintf(stderr,
               "layer_bench: %s\nusage: layer_bench [--size MB] [--files N] [--dir PATH | --tmpfs] [--runs N]\n"
               "                   [--seed S] [--keep] [--gzip-level L] [--no-floors]\n",
               msg);
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    if (a == "--size") f.size_mb = std::stoull(value());
    else if (a == "--files") f.files = std::stoull(value());
    else if (a == "--dir") f.dir = value();
    else if (a == "--tmpfs") f.tmpfs = true;
    else if (a == "--keep") f.keep = true;
    else if (a == "--no-floors") f.floors = false;
    else if (a == "--runs") f.runs = std::max(1, std::stoi(value()));
    else if (a == "--seed") f.seed = std::stoull(value());
    else if (a == "--gzip-level") f.gzip_level = std::stoi(value());
    else Usage(("unknown flag " + a).c_str());
  }
  if (f.files == 0) f.files = std::max<uint64_t>(100, f.size_mb * 50000 / 1024);
  return f;
}

// ---- the tree --------------------------------------------------------------------------------------

// A pool of semi-compressible bytes (about 2:1 with gzip -6, like typical layer contents: text,
// code and some already-compressed data); files are slices of it at random offsets.
std::string MakePool(std::mt19937_64& rng, size_t n) {
  static const char* kWords[] = {"the ", "layer ", "config", "return ", "int ", "static ", "if (", ") {\n",
                                 "}\n", "#include <", ">\n", "std::", "value", "error", " = ", ";\n",
                                 "0x", "\t", "name", "path/", "usr/lib/", ".so.", "json", "\"key\": "};
  std::string s;
  s.reserve(n + 64);
  while (s.size() < n) {
    if (rng() % 12 == 0) {
      size_t k = 64 + rng() % 2048;  // incompressible run
      for (size_t i = 0; i < k; i += 8) {
        uint64_t r = rng();
        s.append(reinterpret_cast<const char*>(&r), 8);
      }
    } else {
      for (int i = 0; i < 64; ++i) {
        s += kWords[rng() % (sizeof kWords / sizeof kWords[0])];
        if (rng() % 4 == 0) s += std::to_string(rng() % 100000);
      }
    }
  }
  s.resize(n);
  return s;
}

struct TreeStats {
  uint64_t files = 0, bytes = 0, dirs = 0;
};

TreeStats Generate(const std::string& root, const Flags& f) {
  std::mt19937_64 rng(f.seed);
  const size_t pool_size = 64 << 20;
  std::string pool = MakePool(rng, pool_size);
  // Log-uniform sizes, mostly small files with a tail of large ones, then scaled to the target total.
  std::vector<double> raw(f.files);
  std::uniform_real_distribution<double> u(0, 1);
  for (auto& r : raw) {
    double x = u(rng);
    r = x < 0.9 ? std::exp(std::log(100.0) + u(rng) * (std::log(64 * 1024.0) - std::log(100.0)))
                : std::exp(std::log(64 * 1024.0) + u(rng) * (std::log(8.0 * 1024 * 1024) - std::log(64 * 1024.0)));
  }
  double sum = 0;
  for (double r : raw) sum += r;
  const double scale = static_cast<double>(f.size_mb << 20) / sum;
  TreeStats st;
  std::filesystem::create_directories(root);
  const uint64_t per_dir = 50;
  for (uint64_t i = 0; i < f.files; ++i) {
    uint64_t d = i / per_dir;
    std::string dir = root + "/d" + std::to_string(d / 20) + "/s" + std::to_string(d % 20);
    if (i % per_dir == 0) {
      std::filesystem::create_directories(dir);
      ++st.dirs;
    }
    size_t size = std::min<size_t>(static_cast<size_t>(raw[i] * scale), pool_size - 1);
    size_t off = rng() % (pool_size - size);
    std::string path = dir + "/f" + std::to_string(i) + (i % 3 == 0 ? ".txt" : ".bin");
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ::write(fd, pool.data() + off, size) != static_cast<ssize_t>(size) || ::close(fd) != 0) {
      std::perror(path.c_str());
      std::exit(1);
    }
    struct timespec ts[2] = {{1700000000 + static_cast<time_t>(i), 0}, {1700000000 + static_cast<time_t>(i), 0}};
    ::utimensat(AT_FDCWD, path.c_str(), ts, 0);
    ++st.files;
    st.bytes += size;
  }
  return st;
}

// ---- child processes -------------------------------------------------------------------------------

struct RunResult {
  double seconds = 0;
  long max_rss_kb = 0;
  int exit_code = -1;
  std::string output;
};

RunResult Spawn(const std::vector<std::string>& argv) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) std::exit(1);
  auto start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipefd[1], 1);
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::perror("execv");
    ::_exit(127);
  }
  ::close(pipefd[1]);
  RunResult r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) r.output.append(buf, static_cast<size_t>(n));
  ::close(pipefd[0]);
  int status = 0;
  struct rusage ru {};
  ::wait4(pid, &status, 0, &ru);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.max_rss_kb = ru.ru_maxrss;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string Field(const std::string& out, const std::string& key) {
  size_t p = out.find(key + "=");
  if (p == std::string::npos) return "";
  p += key.size() + 1;
  return out.substr(p, out.find('\n', p) - p);
}

int ChildWrite(const std::string& algo, const std::string& tree, const std::string& out, int level) {
  layers::LayerOptions o;
  o.compression.algorithm = algo == "gzip" ? media_type::Compression::kGzip : algo == "zstd" ? media_type::Compression::kZstd : media_type::Compression::kNone;
  if (algo == "gzip") o.compression.level = level;
  auto changes = layers::ChangesForTree(tree);
  if (!changes.ok()) {
    std::fprintf(stderr, "%s\n", changes.status().ToString().c_str());
    return 1;
  }
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  FdWriter file(fd, true, out);
  auto info = layers::WriteLayer(tree, *changes, o, &file);
  Status s = info.ok() ? file.Close() : info.status();
  if (!s.ok()) {
    std::fprintf(stderr, "layer_bench: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("diff_id=%s\ndigest=%s\nsize=%" PRIu64 "\ntar_size=%" PRIu64 "\nentries=%" PRIu64 "\n",
              info->diff_id.ToString().c_str(), info->digest.ToString().c_str(), info->size, info->tar_size,
              info->stats.entries);
  return 0;
}

int ChildExtract(const std::string& blob, const std::string& digest, const std::string& dest) {
#ifdef KILN_BENCH_HAVE_EXTRACT
  auto reader = OpenFileReader(blob);
  auto d = Digest::Parse(digest);
  if (!reader.ok() || !d.ok()) return 1;
  ::mkdir(dest.c_str(), 0755);
  layers::LayerExpectation expect;
  expect.digest = *d;
  auto r = layers::ExtractLayer(**reader, expect, dest);
  if (!r.ok()) {
    std::fprintf(stderr, "layer_bench: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::printf("diff_id=%s\nentries=%" PRIu64 "\n", r->diff_id.ToString().c_str(), r->entries);
  return 0;
#else
  (void)blob, (void)digest, (void)dest;
  return 3;
#endif
}

// ---- the table -------------------------------------------------------------------------------------

struct Row {
  std::string group, name;
  double seconds = 0;
  long rss_kb = 0;
  uint64_t out_bytes = 0;
  bool floor = false;
};

uint64_t FileSize(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string Sh(const std::string& s) { return "'" + s + "'"; }

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) {
  using namespace kiln::bench;
  if (argc >= 2 && std::string(argv[1]) == "--child") {
    std::string what = argc > 2 ? argv[2] : "";
    if (what == "write" && argc == 7) return ChildWrite(argv[3], argv[4], argv[5], std::atoi(argv[6]));
    if (what == "extract" && argc == 6) return ChildExtract(argv[3], argv[4], argv[5]);
    return 2;
  }
  Flags f = ParseFlags(argc, argv);
  std::string base = !f.dir.empty() ? f.dir : f.tmpfs ? "/dev/shm" : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
  std::string work = base + "/kiln-layer-bench-XXXXXX";
  if (::mkdtemp(work.data()) == nullptr) {
    std::perror(work.c_str());
    return 1;
  }
  const std::string tree = work + "/tree", out = work + "/out";
  std::filesystem::create_directories(out);
  std::string self = std::filesystem::read_symlink("/proc/self/exe");

  auto t0 = std::chrono::steady_clock::now();
  TreeStats ts = Generate(tree, f);
  double gen_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("tree: %s  %" PRIu64 " files in %" PRIu64 " dirs, %.1f MB, generated in %.1f s (seed %" PRIu64
              ", %s)\n",
              tree.c_str(), ts.files, ts.dirs, ts.bytes / 1e6, gen_s, f.seed, f.tmpfs ? "tmpfs" : "disk");
  std::printf("threads: %ld online CPUs; gzip level %d; runs per measurement: %d (median)\n\n",
              ::sysconf(_SC_NPROCESSORS_ONLN), f.gzip_level ? f.gzip_level : kiln::layers::kDefaultGzipLevel,
              f.runs);
  std::fflush(stdout);

  std::vector<Row> rows;
  std::map<std::string, std::string> digests;
  uint64_t tar_size = 0;
  auto measure = [&](const std::string& group, const std::string& name, bool floor,
                     const std::vector<std::string>& argv, const std::string& out_file,
                     const std::string& cleanup) -> std::string {
    std::vector<double> secs;
    long rss = 0;
    std::string output;
    for (int i = 0; i < f.runs; ++i) {
      if (!cleanup.empty()) std::system(cleanup.c_str());
      RunResult r = Spawn(argv);
      if (r.exit_code != 0) {
        std::fprintf(stderr, "%s failed (exit %d)\n", name.c_str(), r.exit_code);
        return "";
      }
      secs.push_back(r.seconds);
      rss = std::max(rss, r.max_rss_kb);
      output = r.output;
    }
    Row row{group, name, Median(secs), rss, out_file.empty() ? 0 : FileSize(out_file), floor};
    rows.push_back(row);
    std::fprintf(stderr, "  %-34s %7.2f s\n", name.c_str(), row.seconds);
    return output;
  };
  const std::string lvl = std::to_string(f.gzip_level ? f.gzip_level : kiln::layers::kDefaultGzipLevel);
  const std::string tar_c = "tar -C " + Sh(tree) + " -cf - . ";

  // Writing.
  std::string o = measure("write", "kiln tar", false, {self, "--child", "write", "none", tree, out + "/k.tar", "0"},
                          out + "/k.tar", "");
  tar_size = std::stoull(Field(o, "tar_size").empty() ? "0" : Field(o, "tar_size"));
  digests["none"] = Field(o, "digest");
  o = measure("gzip", "kiln tar+gzip -" + lvl, false,
              {self, "--child", "write", "gzip", tree, out + "/k.tar.gz", std::to_string(f.gzip_level)},
              out + "/k.tar.gz", "");
  digests["gzip"] = Field(o, "digest");
  measure("zstd", "kiln tar+zstd -3", false, {self, "--child", "write", "zstd", tree, out + "/k.tar.zst", "0"},
          out + "/k.tar.zst", "");
  if (f.floors) {
    measure("write", "tar -cf - | cat", true, {"/bin/bash", "-c", tar_c + "| cat > " + out + "/f.tar"}, out + "/f.tar", "");
    measure("write", "tar -cf - | sha256sum", true, {"/bin/bash", "-c", tar_c + "| sha256sum >/dev/null"}, "", "");
    measure("gzip", "tar | gzip -" + lvl, true, {"/bin/bash", "-c", tar_c + "| gzip -" + lvl + " > " + out + "/f.tar.gz"},
            out + "/f.tar.gz", "");
    measure("gzip", "tar | pigz -" + lvl, true, {"/bin/bash", "-c", tar_c + "| pigz -" + lvl + " > " + out + "/p.tar.gz"},
            out + "/p.tar.gz", "");
    measure("zstd", "tar | zstd -3 -T2", true, {"/bin/bash", "-c", tar_c + "| zstd -q -3 -T2 > " + out + "/f.tar.zst"},
            out + "/f.tar.zst", "");
  }
  // Extraction of kiln's gzip layer.
  const std::string x = work + "/x";
  const std::string rmx = "rm -rf " + Sh(x);
#ifdef KILN_BENCH_HAVE_EXTRACT
  if (!digests["gzip"].empty()) {
    measure("extract", "kiln ExtractLayer (gzip)", false, {self, "--child", "extract", out + "/k.tar.gz", digests["gzip"], x},
            "", rmx);
  }
  if (!digests["none"].empty()) {
    measure("extract", "kiln ExtractLayer (tar)", false, {self, "--child", "extract", out + "/k.tar", digests["none"], x},
            "", rmx);
  }
#endif
  if (f.floors) {
    measure("extract", "tar -xf (plain tar)", true, {"/bin/bash", "-c", "mkdir -p " + x + " && tar -C " + x + " -xf " + out + "/k.tar"}, "", rmx);
    measure("extract", "tar -xzf", true, {"/bin/bash", "-c", "mkdir -p " + x + " && tar -C " + x + " -xzf " + out + "/k.tar.gz"}, "", rmx);
    measure("extract", "pigz -dc | tar -xf -", true,
            {"/bin/bash", "-c", "mkdir -p " + x + " && pigz -dc " + out + "/k.tar.gz | tar -C " + x + " -xf -"}, "", rmx);
  }
  std::system(rmx.c_str());

  // The floor of each group: the fastest floor measurement in it.
  std::map<std::string, double> floor_s;
  for (const auto& r : rows) {
    if (!r.floor) continue;
    std::string g = r.group;
    if (!floor_s.count(g) || r.seconds < floor_s[g]) floor_s[g] = r.seconds;
  }
  std::printf("%-8s %-32s %8s %9s %9s %8s %10s\n", "group", "measurement", "seconds", "MB/s", "out MB", "x floor",
              "peak RSS");
  for (const auto& r : rows) {
    double mbs = tar_size / 1e6 / r.seconds;
    std::string ratio = floor_s.count(r.group) ? std::to_string(r.seconds / floor_s[r.group]).substr(0, 4) : "-";
    std::printf("%-8s %-32s %8.2f %9.1f %9s %8s %7.1f MB\n", r.group.c_str(), (r.name + (r.floor ? " *" : "")).c_str(), r.seconds, mbs,
                r.out_bytes ? std::to_string(r.out_bytes / 1000000).c_str() : "-", ratio.c_str(), r.rss_kb / 1024.0);
  }
  std::printf("\nMB/s = uncompressed tar bytes (%.1f MB) / seconds; x floor = seconds / fastest floor (*) of the "
              "group.\n",
              tar_size / 1e6);
  if (!f.keep) {
    std::filesystem::remove_all(work);
  } else {
    std::printf("kept %s\n", work.c_str());
  }
  return 0;
}
