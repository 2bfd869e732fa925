#include "executor/log/build_log.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>

namespace kiln::executor {
namespace {

std::string_view LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kError: return "error";
    case LogLevel::kWarn: return "warning";
    case LogLevel::kInfo: return "info";
    case LogLevel::kDebug: return "debug";
  }
  return "info";
}

std::string NowRfc3339() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t;
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  char out[80];
  snprintf(out, sizeof out, "%s.%03ldZ", buf, ts.tv_nsec / 1000000);
  return out;
}

void WriteAllFd(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a log that cannot be written must not fail the build
    }
    s.remove_prefix(static_cast<size_t>(n));
  }
}

class FdBuildLog : public BuildLog {
 public:
  FdBuildLog(int fd, LogFormat format, LogLevel level, bool timestamps, bool gitlab_sections)
      : fd_(fd),
        format_(format),
        level_(level),
        timestamps_(timestamps),
        sections_(gitlab_sections && format != LogFormat::kJson),
        output_(this) {
    // A person at a terminal: the step line is rewritten in place with its progress and its result,
    // in colour. Never in CI logs (not a TTY), with --log-format plain or json, or TERM=dumb.
    const char* term = std::getenv("TERM");
    bool tty = ::isatty(fd) == 1 && !(term != nullptr && std::string_view(term) == "dumb");
    live_ = tty && (format == LogFormat::kText || format == LogFormat::kColor) && level >= LogLevel::kInfo;
    color_ = (tty && format != LogFormat::kPlain && format != LogFormat::kJson && std::getenv("NO_COLOR") == nullptr) ||
             format == LogFormat::kColor;
  }
  ~FdBuildLog() override {
    std::lock_guard<std::mutex> lock(mu_);
    EndPendingLocked();
    CloseSectionLocked();
  }

  bool live() const override { return live_; }

  void LiveStatus(std::string_view text) override {
    if (!live_) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (!pending_ && step_ != 0) return;  // the step's output owns the screen's last line
    WriteAllFd(fd_, "\r\x1b[K" + step_line_ + (step_line_.empty() ? "" : "  ") + Paint("2", std::string(text)));
    pending_ = true;
  }

  void Log(LogLevel level, std::string_view message) override {
    if (level > level_) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (format_ == LogFormat::kJson) {
      nlohmann::ordered_json j;
      j["time"] = NowRfc3339();
      j["level"] = LevelName(level);
      j["msg"] = message;
      AddStep(j);
      WriteLine(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
      return;
    }
    std::string line = Prefix();
    if (level == LogLevel::kError) line += Paint("1;31", "error: ");
    if (level == LogLevel::kWarn) line += Paint("33", "warning: ");
    line += message;
    if (live_ && pending_ && step_ != 0) {
      // A message from inside a step goes above the step's line, which is drawn again below it.
      WriteAllFd(fd_, "\r\x1b[K" + line + "\n" + step_line_);
      return;
    }
    EndPendingLocked();
    WriteLine(line);
  }

  void StepStart(int stage, int stages, int step, int steps, std::string_view text) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (sections_ && stage != section_stage_) {
        // GitLab's collapsible sections (docs: "Custom collapsible sections"), one per stage, so a
        // long multi-stage log folds into its stages.
        CloseSectionLocked();
        section_stage_ = stage;
        WriteAllFd(fd_, "\x1b[0Ksection_start:" + std::to_string(::time(nullptr)) + ":kiln_stage_" +
                            std::to_string(stage) + "\r\x1b[0Kkiln: stage " + std::to_string(stage) + "/" +
                            std::to_string(stages) + "\n");
      }
      stage_ = stage, stages_ = stages, step_ = step, steps_ = steps;
      partial_.clear();
      if (live_) {
        EndPendingLocked();
        step_line_ = Paint("1", StepTag()) + ": " + std::string(text);
        WriteAllFd(fd_, Prefix() + step_line_);
        pending_ = true;  // rewritten in place by progress and by StepDone, unless output comes first
        return;
      }
    }
    Log(LogLevel::kInfo, std::string(StepTag()) + ": " + std::string(text));
  }

  void StepDone(std::chrono::nanoseconds took, std::string_view note) override {
    FlushPartial();
    std::string done = "done in " + FormatDuration(took);
    std::string why = note.empty() ? std::string() : " (" + std::string(note) + ")";
    bool rewritten = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (live_ && pending_) {
        // No output since the step line: the step's one line becomes its result.
        WriteAllFd(fd_, "\r\x1b[K" + Prefix() + step_line_ + "  " + Paint("32", done) + why + "\n");
        pending_ = false;
        rewritten = true;
      }
    }
    if (!rewritten) Log(LogLevel::kInfo, (live_ ? Paint("1", StepTag()) : StepTag()) + ": " + done + why);
    std::lock_guard<std::mutex> lock(mu_);
    if (step_ == steps_) CloseSectionLocked();  // the stage's last step: the summary lines stay outside
    step_ = 0;
  }

  Writer* StepOutput() override { return &output_; }

 private:
  class Output : public Writer {
   public:
    explicit Output(FdBuildLog* log) : log_(log) {}
    Status Write(const void* data, size_t n) override {
      log_->StepBytes(std::string_view(static_cast<const char*>(data), n));
      return OkStatus();
    }
    using Writer::Write;
   private:
    FdBuildLog* log_;
  };

  std::string StepTag() const {
    return "[stage " + std::to_string(stage_) + "/" + std::to_string(stages_) + "] STEP " + std::to_string(step_) +
           "/" + std::to_string(steps_);
  }

  std::string Prefix() const { return timestamps_ ? NowRfc3339() + " " : std::string(); }

  void AddStep(nlohmann::ordered_json& j) const {
    if (step_ == 0) return;
    j["stage"] = stage_;
    j["step"] = step_;
  }

  // Text mode passes output straight through (a progress bar's carriage returns included); JSON mode
  // needs whole lines, so it keeps the unfinished tail until the next newline or the step's end.
  // A step's output is shown at every --verbosity, as Kaniko shows it: it is the build's own output,
  // and a failing step must never fail silently (--verbosity=error is common in CI templates).
  void StepBytes(std::string_view bytes) {
    if (format_ != LogFormat::kJson) {
      std::lock_guard<std::mutex> lock(mu_);
      EndPendingLocked();
      WriteAllFd(fd_, bytes);
      return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    partial_.append(bytes);
    size_t start = 0, nl;
    while ((nl = partial_.find('\n', start)) != std::string::npos) {
      EmitOutputLine(std::string_view(partial_).substr(start, nl - start));
      start = nl + 1;
    }
    partial_.erase(0, start);
  }

  void FlushPartial() {
    std::lock_guard<std::mutex> lock(mu_);
    if (format_ == LogFormat::kJson && !partial_.empty()) EmitOutputLine(partial_);
    partial_.clear();
  }

  void EmitOutputLine(std::string_view line) {
    nlohmann::ordered_json j;
    j["time"] = NowRfc3339();
    j["level"] = "info";
    j["output"] = line;
    AddStep(j);
    WriteLine(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  // Ends a line left open for in-place updates, so what follows starts on a line of its own.
  void EndPendingLocked() {
    if (!pending_) return;
    WriteAllFd(fd_, "\n");
    pending_ = false;
  }

  std::string Paint(const char* sgr, const std::string& text) const {
    return color_ ? "\x1b[" + std::string(sgr) + "m" + text + "\x1b[0m" : text;
  }

  void CloseSectionLocked() {
    if (section_stage_ == 0) return;
    WriteAllFd(fd_, "\x1b[0Ksection_end:" + std::to_string(::time(nullptr)) + ":kiln_stage_" +
                        std::to_string(section_stage_) + "\r\x1b[0K\n");
    section_stage_ = 0;
  }

  void WriteLine(std::string_view line) {
    std::string s(line);
    s += '\n';
    WriteAllFd(fd_, s);
  }

  int fd_;
  LogFormat format_;
  LogLevel level_;
  bool timestamps_;
  bool sections_;
  bool live_ = false, color_ = false;
  bool pending_ = false;   // the last line written has no newline yet (live mode)
  std::string step_line_;  // the current step's line as shown (live mode)
  int section_stage_ = 0;  // the stage whose GitLab section is open, 0 for none
  std::mutex mu_;
  int stage_ = 0, stages_ = 0, step_ = 0, steps_ = 0;
  std::string partial_;
  Output output_;
};

}  // namespace

LogLevel ParseLogLevel(std::string_view v) {
  if (v == "panic" || v == "fatal" || v == "error") return LogLevel::kError;
  if (v == "warn" || v == "warning") return LogLevel::kWarn;
  if (v == "debug" || v == "trace") return LogLevel::kDebug;
  return LogLevel::kInfo;
}

std::unique_ptr<BuildLog> NewFdBuildLog(int fd, LogFormat format, LogLevel level, bool timestamps,
                                        bool gitlab_sections) {
  return std::make_unique<FdBuildLog>(fd, format, level, timestamps, gitlab_sections);
}

void MemoryBuildLog::Log(LogLevel level, std::string_view message) {
  std::lock_guard<std::mutex> lock(mu_);
  text_ += std::string(LevelName(level)) + ": " + std::string(message) + "\n";
}

void MemoryBuildLog::StepStart(int stage, int stages, int step, int steps, std::string_view text) {
  Log(LogLevel::kInfo, "[stage " + std::to_string(stage) + "/" + std::to_string(stages) + "] STEP " +
                           std::to_string(step) + "/" + std::to_string(steps) + ": " + std::string(text));
}

void MemoryBuildLog::StepDone(std::chrono::nanoseconds, std::string_view note) {
  Log(LogLevel::kInfo, "done " + std::string(note));
}

Status MemoryBuildLog::Output::Write(const void* data, size_t n) {
  std::lock_guard<std::mutex> lock(log_->mu_);
  log_->text_.append(static_cast<const char*>(data), n);
  return OkStatus();
}

std::string MemoryBuildLog::text() const {
  std::lock_guard<std::mutex> lock(mu_);
  return text_;
}

ProgressMeter::ProgressMeter(BuildLog* log, std::string label, uint64_t total, std::chrono::milliseconds every)
    : log_(log), label_(std::move(label)), total_(total), every_(every) {
  // At a terminal the step line shows live progress, ten times a second.
  if (log_->live()) every_ = std::min(every_, std::chrono::milliseconds(100));
  start_ = last_ = std::chrono::steady_clock::now();
}

void ProgressMeter::Add(uint64_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += n;
  auto now = std::chrono::steady_clock::now();
  if (now - last_ < every_) return;
  last_ = now;
  double secs = std::chrono::duration<double>(now - start_).count();
  std::string line = label_ + ": " + FormatBytes(done_);
  if (total_ > 0) line += " of " + FormatBytes(total_) + " (" + std::to_string(done_ * 100 / total_) + "%)";
  if (secs > 0) {
    double rate = done_ / secs;
    line += ", " + FormatBytes(static_cast<uint64_t>(rate)) + "/s";
    if (total_ > done_ && rate > 0) {
      line += ", ETA " + FormatDuration(std::chrono::nanoseconds(static_cast<int64_t>((total_ - done_) / rate * 1e9)));
    }
  }
  if (log_->live()) {
    log_->LiveStatus(line);
  } else {
    log_->Info(line);
  }
}

std::string FormatDuration(std::chrono::nanoseconds d) {
  double s = std::chrono::duration<double>(d).count();
  char buf[32];
  if (s < 1) {
    snprintf(buf, sizeof buf, "%.0fms", s * 1000);
  } else if (s < 60) {
    snprintf(buf, sizeof buf, "%.2fs", s);
  } else {
    int m = static_cast<int>(s / 60);
    snprintf(buf, sizeof buf, "%dm%02.0fs", m, s - m * 60);
  }
  return buf;
}

std::string FormatBytes(uint64_t n) {
  char buf[32];
  if (n < 1000) {
    snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  } else if (n < 1000 * 1000) {
    snprintf(buf, sizeof buf, "%.1f kB", n / 1e3);
  } else if (n < 1000ull * 1000 * 1000) {
    snprintf(buf, sizeof buf, "%.1f MB", n / 1e6);
  } else {
    snprintf(buf, sizeof buf, "%.2f GB", n / 1e9);
  }
  return buf;
}

}  // namespace kiln::executor
