// BuildLog: what a build tells the person watching it. Steps look like Buildah's and BuildKit's:
//
//   [stage 1/2] STEP 3/7: RUN make
//   ... the step's output ...
//   [stage 1/2] STEP 3/7: done in 2.31s (layer sha256:ab12… 4.1 MB)
//
// Text goes to one file descriptor (stderr by default); --log-format json writes one JSON object per
// line instead ({"time","level","msg"} plus "stage"/"step" when inside one), so CI systems can parse
// it. A RUN step's output is passed through as it comes in text mode and becomes one "output" record
// per line in JSON mode. Thread-safe: pulls and pushes report progress from worker threads.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "core/io.h"

namespace kiln::executor {

/// How the log is written: lines (and, at a terminal, a live step line), lines always coloured, plain
/// lines never rewritten or coloured, or one JSON record per line.
enum class LogFormat { kText, kColor, kJson, kPlain };

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

/// Parses Kaniko's --verbosity values (panic, fatal and error map to kError; trace to kDebug).
LogLevel ParseLogLevel(std::string_view verbosity);

class BuildLog {
 public:
  virtual ~BuildLog() = default;
  virtual void Log(LogLevel level, std::string_view message) = 0;
  void Error(std::string_view m) { Log(LogLevel::kError, m); }
  void Warn(std::string_view m) { Log(LogLevel::kWarn, m); }
  void Info(std::string_view m) { Log(LogLevel::kInfo, m); }
  void Debug(std::string_view m) { Log(LogLevel::kDebug, m); }

  /// Announces a step; `stage`/`step` are 1-based. Until StepDone, messages carry the step.
  virtual void StepStart(int stage, int stages, int step, int steps, std::string_view text) = 0;
  /// Ends the current step with its duration and a short note ("layer sha256:… 4.1 MB", "no changes").
  virtual void StepDone(std::chrono::nanoseconds took, std::string_view note) = 0;
  /// Where a RUN step's combined output goes while it runs. Valid until the next StepDone.
  virtual Writer* StepOutput() = 0;
  /// True when a person watches at a terminal: progress is shown in place (LiveStatus), often.
  virtual bool live() const { return false; }
  /// Replaces the current step's status text in place (live logs only; others ignore it).
  virtual void LiveStatus(std::string_view text) { (void)text; }
  /// A log for one of several stages built at once, named `name` (e.g. "#2 builder"). It writes
  /// where this log writes, but every text line of it (messages, steps, and the step's output, whole
  /// lines at a time) starts with "[name] ", and JSON records carry "lane": name. It keeps its own
  /// current step, so each lane may be used from its own thread. Never live, no GitLab sections.
  virtual std::unique_ptr<BuildLog> Lane(std::string name) = 0;
};

/// A log that writes to `fd` (not owned, not closed). With `gitlab_sections` (kiln sets it when
/// $GITLAB_CI is set) each stage is a GitLab collapsible section in text mode.
std::unique_ptr<BuildLog> NewFdBuildLog(int fd, LogFormat format, LogLevel level, bool timestamps,
                                        bool gitlab_sections = false);

/// Collects everything in memory (tests).
class MemoryBuildLog : public BuildLog {
 public:
  void Log(LogLevel level, std::string_view message) override;
  void StepStart(int stage, int stages, int step, int steps, std::string_view text) override;
  void StepDone(std::chrono::nanoseconds took, std::string_view note) override;
  Writer* StepOutput() override { return &output_; }
  /// The lane appends to this log's text; it must not outlive this log.
  std::unique_ptr<BuildLog> Lane(std::string name) override;
  std::string text() const;

 private:
  friend class MemoryLane;
  void Append(std::string_view s);
  class Output : public Writer {
   public:
    explicit Output(MemoryBuildLog* log) : log_(log) {}
    Status Write(const void* data, size_t n) override;
    using Writer::Write;
   private:
    MemoryBuildLog* log_;
  };
  mutable std::mutex mu_;
  std::string text_;
  Output output_{this};
};

/// Progress of a long transfer (a pull, a push): a plain log line at most every `every`, so a CI log
/// shows the build is alive without a line per chunk. Thread-safe.
class ProgressMeter {
 public:
  ProgressMeter(BuildLog* log, std::string label, uint64_t total, std::chrono::milliseconds every = std::chrono::seconds(5));
  void Add(uint64_t n);

 private:
  BuildLog* log_;
  std::string label_;
  uint64_t total_;
  std::chrono::milliseconds every_;
  std::mutex mu_;
  uint64_t done_ = 0;
  std::chrono::steady_clock::time_point start_, last_;
};

/// Counts what is read through it into a ProgressMeter.
class MeteredReader : public Reader {
 public:
  MeteredReader(std::unique_ptr<Reader> src, ProgressMeter* meter) : src_(std::move(src)), meter_(meter) {}
  Result<size_t> Read(void* buf, size_t n) override {
    Result<size_t> r = src_->Read(buf, n);
    if (r.ok() && meter_) meter_->Add(*r);
    return r;
  }

 private:
  std::unique_ptr<Reader> src_;
  ProgressMeter* meter_;
};

/// "1.23s", "450ms", "2m03s".
std::string FormatDuration(std::chrono::nanoseconds d);
/// "4.1 MB", "812 kB", "12 B" (decimal units, as docker prints sizes).
std::string FormatBytes(uint64_t n);

}  // namespace kiln::executor
