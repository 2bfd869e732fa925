// snapshot_bench: the cost of change detection after a RUN step.
//
// Generates a tree of ~50,000 small files (or uses --dir), then times: a baseline walk, a walk+diff
// with nothing changed, and a walk+diff after rewriting one file; prints medians and min-max over
// --runs, the index size and the process's peak RSS.
//
//   snapshot_bench [--files N] [--runs R] [--dir PATH] [--keep] [--threads T]
// Without --threads it runs everything with 1 thread and then with 2.
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "snapshot/diff.h"

namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

void Die(const std::string& what) {
  std::fprintf(stderr, "snapshot_bench: %s\n", what.c_str());
  std::exit(1);
}

void WriteSmall(const std::string& path, size_t size, unsigned seed) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("create " + path + ": " + std::strerror(errno));
  std::string data(size, static_cast<char>('a' + seed % 26));
  if (::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) Die("write " + path);
  ::close(fd);
}

// A rootfs-like shape: 50 top directories, 10 subdirectories each, N/500 files per subdirectory,
// plus a symlink per subdirectory.
void Generate(const std::string& root, int files) {
  int per_dir = std::max(1, files / 500);
  for (int a = 0; a < 50; ++a) {
    for (int b = 0; b < 10; ++b) {
      char dir[256];
      std::snprintf(dir, sizeof dir, "%s/usr%02d/share-%02d", root.c_str(), a, b);
      std::filesystem::create_directories(dir);
      for (int f = 0; f < per_dir; ++f) {
        char name[300];
        std::snprintf(name, sizeof name, "%s/file-%04d.txt", dir, f);
        WriteSmall(name, 64 + (f * 37) % 2000, static_cast<unsigned>(f));
      }
      std::string link = std::string(dir) + "/latest";
      if (::symlink("file-0000.txt", link.c_str()) != 0 && errno != EEXIST) Die("symlink " + link);
    }
  }
}

struct Stats {
  double median, min, max;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v.front(), v.back()};
}

unsigned g_threads = 1;

kiln::snapshot::Baseline MustTake(const std::string& root) {
  kiln::snapshot::WalkOptions options;
  options.threads = g_threads;
  auto b = kiln::snapshot::Baseline::Take(root, options);
  if (!b.ok()) Die(b.status().ToString());
  return std::move(b).value();
}

}  // namespace

void Measure(const std::string& dir, int runs);

int main(int argc, char** argv) {
  int files = 50000, runs = 7;
  std::vector<unsigned> thread_counts = {1, 2};
  std::string dir;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--files" && i + 1 < argc) files = std::atoi(argv[++i]);
    else if (a == "--runs" && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
    else if (a == "--dir" && i + 1 < argc) dir = argv[++i];
    else if (a == "--keep") keep = true;
    else if (a == "--threads" && i + 1 < argc) thread_counts = {static_cast<unsigned>(std::atoi(argv[++i]))};
    else Die("usage: snapshot_bench [--files N] [--runs R] [--dir PATH] [--keep] [--threads T]");
  }
  bool generated = dir.empty();
  if (generated) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/kiln-snapbench-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) Die("mkdtemp");
    dir = tmpl;
    auto t0 = Clock::now();
    Generate(dir, files);
    std::printf("generated %d files in %s (%.0f ms)\n", files, dir.c_str(), Ms(Clock::now() - t0));
    ::usleep(50 * 1000);  // let the racy window pass, as it has between real steps
  }
  for (unsigned t : thread_counts) {
    g_threads = t;
    Measure(dir, runs);
  }
  struct rusage ru;
  ::getrusage(RUSAGE_SELF, &ru);
  std::printf("peak RSS %.1f MiB (whole process: generation, %zu measurements)\n", ru.ru_maxrss / 1024.0,
              thread_counts.size());
  if (generated && !keep) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return 0;
}

void Measure(const std::string& dir, int runs) {

  std::vector<double> walk, nochange_walk, nochange_diff, touch_walk, touch_diff;
  kiln::snapshot::Baseline base = MustTake(dir);  // warm-up
  size_t entries = base.size(), bytes = base.MemoryBytes(), racy = base.racy_count();
  for (int r = 0; r < runs; ++r) {
    auto t0 = Clock::now();
    kiln::snapshot::Baseline b = MustTake(dir);
    walk.push_back(Ms(Clock::now() - t0));
  }
  for (int r = 0; r < runs; ++r) {
    auto t0 = Clock::now();
    kiln::snapshot::Baseline now = MustTake(dir);
    auto t1 = Clock::now();
    auto c = kiln::snapshot::Diff(base, now);
    auto t2 = Clock::now();
    if (!c.ok()) Die(c.status().ToString());
    if (!c->empty()) Die("no-change diff reported changes, first: " +
                         (c->added_or_modified.empty() ? c->deleted.front() : c->added_or_modified.front()));
    nochange_walk.push_back(Ms(t1 - t0));
    nochange_diff.push_back(Ms(t2 - t1));
    base = std::move(now);
  }
  std::string victim;
  for (int r = 0; r < runs; ++r) {
    auto paths = base.Paths();
    victim = paths[(paths.size() / 3 + static_cast<size_t>(r)) % paths.size()];
    auto info = base.Find(victim);
    if (info && info->type == kiln::snapshot::FileType::kRegular) {
      WriteSmall(dir + "/" + victim, info->size, 99);  // same size: only mtime/ctime move
    } else {
      victim.clear();
    }
    auto t0 = Clock::now();
    kiln::snapshot::Baseline now = MustTake(dir);
    auto t1 = Clock::now();
    auto c = kiln::snapshot::Diff(base, now);
    auto t2 = Clock::now();
    if (!c.ok()) Die(c.status().ToString());
    if (!victim.empty() && std::find(c->added_or_modified.begin(), c->added_or_modified.end(), victim) ==
                               c->added_or_modified.end()) {
      Die("touched file not reported: " + victim);
    }
    touch_walk.push_back(Ms(t1 - t0));
    touch_diff.push_back(Ms(t2 - t1));
    racy = std::max(racy, now.racy_count());
    base = std::move(now);
  }

  auto row = [](const char* name, const Stats& s) {
    std::printf("| %-34s | %9.1f | %9.1f | %9.1f |\n", name, s.median, s.min, s.max);
  };
  std::printf("\nthreads %u: entries %zu, index %.2f MiB (%.1f bytes/entry), racy fingerprints <= %zu, runs %d\n",
              g_threads, entries, bytes / 1048576.0, static_cast<double>(bytes) / static_cast<double>(entries), racy,
              runs);
  std::printf("| %-34s | %9s | %9s | %9s |\n", "phase (ms)", "median", "min", "max");
  std::printf("|------------------------------------|-----------|-----------|-----------|\n");
  row("baseline walk", Summarize(walk));
  row("no change: walk", Summarize(nochange_walk));
  row("no change: compare", Summarize(nochange_diff));
  row("1 file rewritten: walk", Summarize(touch_walk));
  row("1 file rewritten: compare", Summarize(touch_diff));
}
