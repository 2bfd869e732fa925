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

// What the lanes of one FdBuildLog share: the descriptor, the settings, and the lock every write
// takes, so that lines of stages running at once never mix within a line.
struct FdShared {
  int fd;
  LogFormat format;
  LogLevel level;
  bool timestamps;
  bool sections;
  bool live = false, color = false;
  std::mutex mu;
  bool pending = false;   // the last line written has no newline yet (live mode)
  int section_stage = 0;  // the stage whose GitLab section is open, 0 for none
};

// The log itself (lane "") or one lane of it (Lane): a lane's lines all start with "[NAME] ", its
// step output is written whole lines at a time, and it never draws live lines or GitLab sections
// (several stages cannot share one live line or one open section).
class FdBuildLog : public BuildLog {
 public:
  FdBuildLog(std::shared_ptr<FdShared> shared, std::string lane)
      : sh_(std::move(shared)),
        lane_(std::move(lane)),
        prefix_(lane_.empty() ? std::string() : "[" + lane_ + "] "),
        live_(sh_->live && lane_.empty()),
        sections_(sh_->sections && lane_.empty()),
        output_(this) {}
  ~FdBuildLog() override {
    FlushPartial();
    std::lock_guard<std::mutex> lock(sh_->mu);
    if (!lane_.empty()) return;
    EndPendingLocked();
    CloseSectionLocked();
  }

  bool live() const override { return live_; }

  std::unique_ptr<BuildLog> Lane(std::string name) override {
    return std::make_unique<FdBuildLog>(sh_, lane_.empty() ? std::move(name) : lane_ + " " + name);
  }

  void LiveStatus(std::string_view text) override {
    if (!live_) return;
    std::lock_guard<std::mutex> lock(sh_->mu);
    if (!sh_->pending && step_ != 0) return;  // the step's output owns the screen's last line
    WriteAllFd(sh_->fd, "\r\x1b[K" + step_line_ + (step_line_.empty() ? "" : "  ") + Paint("2", std::string(text)));
    sh_->pending = true;
  }

  void Log(LogLevel level, std::string_view message) override {
    if (level > sh_->level) return;
    std::lock_guard<std::mutex> lock(sh_->mu);
    if (sh_->format == LogFormat::kJson) {
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
    if (live_ && sh_->pending && step_ != 0) {
      // A message from inside a step goes above the step's line, which is drawn again below it.
      WriteAllFd(sh_->fd, "\r\x1b[K" + line + "\n" + step_line_);
      return;
    }
    EndPendingLocked();
    WriteLine(line);
  }

  void StepStart(int stage, int stages, int step, int steps, std::string_view text) override {
    {
      std::lock_guard<std::mutex> lock(sh_->mu);
      if (sections_ && stage != sh_->section_stage) {
        // GitLab's collapsible sections (docs: "Custom collapsible sections"), one per stage, so a
        // long multi-stage log folds into its stages.
        CloseSectionLocked();
        sh_->section_stage = stage;
        WriteAllFd(sh_->fd, "\x1b[0Ksection_start:" + std::to_string(::time(nullptr)) + ":kiln_stage_" +
                                std::to_string(stage) + "\r\x1b[0Kkiln: stage " + std::to_string(stage) + "/" +
                                std::to_string(stages) + "\n");
      }
      stage_ = stage, stages_ = stages, step_ = step, steps_ = steps;
      partial_.clear();
      if (live_) {
        EndPendingLocked();
        step_line_ = Paint("1", StepTag()) + ": " + std::string(text);
        WriteAllFd(sh_->fd, Prefix() + step_line_);
        sh_->pending = true;  // rewritten in place by progress and by StepDone, unless output comes first
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
      std::lock_guard<std::mutex> lock(sh_->mu);
      if (live_ && sh_->pending) {
        // No output since the step line: the step's one line becomes its result.
        WriteAllFd(sh_->fd, "\r\x1b[K" + Prefix() + step_line_ + "  " + Paint("32", done) + why + "\n");
        sh_->pending = false;
        rewritten = true;
      }
    }
    if (!rewritten) Log(LogLevel::kInfo, (live_ ? Paint("1", StepTag()) : StepTag()) + ": " + done + why);
    std::lock_guard<std::mutex> lock(sh_->mu);
    if (sections_ && step_ == steps_) CloseSectionLocked();  // the stage's last step: the summary lines stay outside
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

  std::string Prefix() const { return (sh_->timestamps ? NowRfc3339() + " " : std::string()) + prefix_; }

  void AddStep(nlohmann::ordered_json& j) const {
    if (!lane_.empty()) j["lane"] = lane_;
    if (step_ == 0) return;
    j["stage"] = stage_;
    j["step"] = step_;
  }

  // Text mode passes output straight through (a progress bar's carriage returns included), except
  // in a lane, whose lines must each carry its prefix; JSON mode needs whole lines too. Both keep the
  // unfinished tail until the next newline or the step's end.
  // A step's output is shown at every --verbosity, as Kaniko shows it: it is the build's own output,
  // and a failing step must never fail silently (--verbosity=error is common in CI templates).
  void StepBytes(std::string_view bytes) {
    std::lock_guard<std::mutex> lock(sh_->mu);
    if (sh_->format != LogFormat::kJson && lane_.empty()) {
      EndPendingLocked();
      WriteAllFd(sh_->fd, bytes);
      return;
    }
    partial_.append(bytes);
    size_t start = 0, nl;
    while ((nl = partial_.find('\n', start)) != std::string::npos) {
      EmitOutputLine(std::string_view(partial_).substr(start, nl - start));
      start = nl + 1;
    }
    partial_.erase(0, start);
  }

  void FlushPartial() {
    std::lock_guard<std::mutex> lock(sh_->mu);
    if (!partial_.empty()) EmitOutputLine(partial_);
    partial_.clear();
  }

  void EmitOutputLine(std::string_view line) {
    if (sh_->format != LogFormat::kJson) {
      EndPendingLocked();
      WriteLine(Prefix() + std::string(line));
      return;
    }
    nlohmann::ordered_json j;
    j["time"] = NowRfc3339();
    j["level"] = "info";
    j["output"] = line;
    AddStep(j);
    WriteLine(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  // Ends a line left open for in-place updates, so what follows starts on a line of its own.
  void EndPendingLocked() {
    if (!sh_->pending) return;
    WriteAllFd(sh_->fd, "\n");
    sh_->pending = false;
  }

  std::string Paint(const char* sgr, const std::string& text) const {
    return sh_->color ? "\x1b[" + std::string(sgr) + "m" + text + "\x1b[0m" : text;
  }

  void CloseSectionLocked() {
    if (sh_->section_stage == 0) return;
    WriteAllFd(sh_->fd, "\x1b[0Ksection_end:" + std::to_string(::time(nullptr)) + ":kiln_stage_" +
                            std::to_string(sh_->section_stage) + "\r\x1b[0K\n");
    sh_->section_stage = 0;
  }

  void WriteLine(std::string_view line) {
    std::string s(line);
    s += '\n';
    WriteAllFd(sh_->fd, s);
  }

  std::shared_ptr<FdShared> sh_;
  std::string lane_;    // "" for the log itself
  std::string prefix_;  // "[lane] " or ""
  bool live_, sections_;
  std::string step_line_;  // the current step's line as shown (live mode)
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
  auto sh = std::make_shared<FdShared>();
  sh->fd = fd;
  sh->format = format;
  sh->level = level;
  sh->timestamps = timestamps;
  sh->sections = gitlab_sections && format != LogFormat::kJson;
  // A person at a terminal: the step line is rewritten in place with its progress and its result,
  // in colour. Never in CI logs (not a TTY), with --log-format plain or json, or TERM=dumb.
  const char* term = std::getenv("TERM");
  bool tty = ::isatty(fd) == 1 && !(term != nullptr && std::string_view(term) == "dumb");
  sh->live = tty && (format == LogFormat::kText || format == LogFormat::kColor) && level >= LogLevel::kInfo;
  sh->color = (tty && format != LogFormat::kPlain && format != LogFormat::kJson && std::getenv("NO_COLOR") == nullptr) ||
              format == LogFormat::kColor;
  return std::make_unique<FdBuildLog>(std::move(sh), "");
}

void MemoryBuildLog::Append(std::string_view s) {
  std::lock_guard<std::mutex> lock(mu_);
  text_.append(s);
}

void MemoryBuildLog::Log(LogLevel level, std::string_view message) {
  Append(std::string(LevelName(level)) + ": " + std::string(message) + "\n");
}

namespace {

std::string MemoryStepLine(int stage, int stages, int step, int steps, std::string_view text) {
  return "[stage " + std::to_string(stage) + "/" + std::to_string(stages) + "] STEP " + std::to_string(step) + "/" +
         std::to_string(steps) + ": " + std::string(text);
}

}  // namespace

void MemoryBuildLog::StepStart(int stage, int stages, int step, int steps, std::string_view text) {
  Log(LogLevel::kInfo, MemoryStepLine(stage, stages, step, steps, text));
}

void MemoryBuildLog::StepDone(std::chrono::nanoseconds, std::string_view note) {
  Log(LogLevel::kInfo, "done " + std::string(note));
}

Status MemoryBuildLog::Output::Write(const void* data, size_t n) {
  log_->Append(std::string_view(static_cast<const char*>(data), n));
  return OkStatus();
}

// A lane of a MemoryBuildLog: "[name] info: …" lines, and the step's output as "[name] line".
class MemoryLane : public BuildLog, private Writer {
 public:
  MemoryLane(MemoryBuildLog* log, std::string name) : log_(log), prefix_("[" + name + "] ") {}
  ~MemoryLane() override { Flush(); }
  void Log(LogLevel level, std::string_view message) override {
    log_->Append(prefix_ + std::string(LevelName(level)) + ": " + std::string(message) + "\n");
  }
  void StepStart(int stage, int stages, int step, int steps, std::string_view text) override {
    Log(LogLevel::kInfo, MemoryStepLine(stage, stages, step, steps, text));
  }
  void StepDone(std::chrono::nanoseconds, std::string_view note) override {
    Flush();
    Log(LogLevel::kInfo, "done " + std::string(note));
  }
  Writer* StepOutput() override { return this; }
  std::unique_ptr<BuildLog> Lane(std::string name) override {
    return std::make_unique<MemoryLane>(log_, prefix_.substr(1, prefix_.size() - 3) + " " + name);
  }

 private:
  Status Write(const void* data, size_t n) override {
    std::lock_guard<std::mutex> lock(mu_);
    partial_.append(static_cast<const char*>(data), n);
    size_t start = 0, nl;
    while ((nl = partial_.find('\n', start)) != std::string::npos) {
      log_->Append(prefix_ + partial_.substr(start, nl + 1 - start));
      start = nl + 1;
    }
    partial_.erase(0, start);
    return OkStatus();
  }
  using Writer::Write;
  void Flush() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!partial_.empty()) log_->Append(prefix_ + partial_ + "\n");
    partial_.clear();
  }

  MemoryBuildLog* log_;
  std::string prefix_;
  std::mutex mu_;
  std::string partial_;
};

std::unique_ptr<BuildLog> MemoryBuildLog::Lane(std::string name) {
  return std::make_unique<MemoryLane>(this, std::move(name));
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
