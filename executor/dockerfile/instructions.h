// The Dockerfile model: one struct per instruction, held in a std::variant.
//
// Values are stored as written (after continuation joining and flag extraction) and NOT expanded:
// expansion depends on the stage's ENV/ARG state at build time, so the executor calls ExpandWord on
// the fields that Docker expands (see shell_lex.h). Fields that Docker expands are marked [expand].
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "executor/dockerfile/errors.h"

namespace kiln::dockerfile {

/// A here-document attached to RUN, COPY or ADD.
struct Heredoc {
  std::string name;     ///< delimiter word with quotes removed ("EOF")
  std::string content;  ///< the lines up to the delimiter, each ending in "\n"; tabs stripped for <<-
  bool expand = true;   ///< false when any part of the delimiter was quoted (<<"EOF", <<'EOF')
  bool chomp = false;   ///< <<- form (leading tabs already removed from `content`)
  int fd = 0;           ///< the optional file descriptor before <<, e.g. 2<<EOF
};

/// The command of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD.
struct CommandLine {
  bool exec_form = false;         ///< JSON array form: run args directly, no shell
  /// exec form: argv; shell form: one string, the command text, or none when the instruction has no
  /// arguments (BuildKit: `CMD` alone is the bare shell, `ENTRYPOINT` alone clears the entrypoint).
  std::vector<std::string> args;
  std::vector<Heredoc> heredocs;  ///< RUN only
};

/// A key and a value as written (quotes and $ still in them) — ENV and LABEL.
struct KeyValue {
  std::string key;    ///< [expand]
  std::string value;  ///< [expand]
};

/// FROM [--platform=P] IMAGE [AS NAME]
struct FromInst {
  std::string image;       ///< [expand with global ARGs]
  std::string stage_name;  ///< lower-cased, "" when no AS
  std::string platform;    ///< [expand with global ARGs], "" when not given
};

/// One CSV field of --mount: `key=value` or a bare `key` (ro, rw, required).
struct MountField {
  std::string key;  ///< lower-cased
  std::string value;  ///< [expand]
  bool has_value = false;
};
/// One --mount=... of RUN as written. Resolve with ResolveMount (mount.h) at build time.
struct MountSpec {
  std::string raw;  ///< the flag value, e.g. "type=cache,target=/x"
  std::vector<MountField> fields;
  std::string from;  ///< the from= value (stage or image; cannot contain variables), "" if none
};

struct RunInst {
  CommandLine cmd;
  std::vector<MountSpec> mounts;
  std::string network;   ///< "", "default", "none" or "host"
  std::string security;  ///< "", "sandbox" or "insecure"
};
struct CmdInst {
  CommandLine cmd;
};
struct EntrypointInst {
  CommandLine cmd;  ///< shell form with no text → args empty (clears the entrypoint)
};
struct ShellInst {
  std::vector<std::string> shell;
};
struct LabelInst {
  std::vector<KeyValue> labels;
};
struct MaintainerInst {
  std::string name;
};
struct ExposeInst {
  std::vector<std::string> ports;  ///< [expand into words], sorted as written (Docker sorts them)
};
struct EnvInst {
  std::vector<KeyValue> vars;
};

/// An inline file from a heredoc source of COPY/ADD: `COPY <<EOF /dest`.
struct InlineSource {
  std::string path;  ///< the heredoc name, used as the file name
  std::string data;
  bool expand = true;  ///< expand variables in `data` (unquoted delimiter)
};

/// Fields shared by COPY and ADD.
struct CopyCommon {
  std::vector<std::string> sources;  ///< [expand], paths in the context (or URLs for ADD)
  std::vector<InlineSource> inline_sources;
  std::string dest;                   ///< [expand]
  std::string chown;                  ///< [expand]
  std::string chmod;                  ///< [expand]
  bool link = false;
  std::vector<std::string> excludes;  ///< [expand] --exclude patterns
  bool json = false;                  ///< written in JSON form
};
struct CopyInst : CopyCommon {
  std::string from;  ///< [expand] stage name, index or image; "" = build context
  bool parents = false;
};
struct AddInst : CopyCommon {
  std::string checksum;  ///< [expand]
  bool keep_git_dir = false;
  /// --unpack (Dockerfile 1.17): unset = BuildKit's default (local archives extracted, downloads not);
  /// true = a downloaded archive is extracted too; false = a local archive is copied as a file.
  std::optional<bool> unpack;
};

struct VolumeInst {
  std::vector<std::string> paths;  ///< [expand] each
};
struct UserInst {
  std::string user;  ///< [expand]
};
struct WorkdirInst {
  std::string path;  ///< [expand]
};
struct ArgDecl {
  std::string key;
  std::optional<std::string> value;  ///< default as written [expand]; nullopt for `ARG NAME`
};
struct ArgInst {
  std::vector<ArgDecl> args;
};
/// ONBUILD <instruction>: stored as text, parsed when a child build triggers it (ParseTrigger).
struct OnbuildInst {
  std::string expression;  ///< e.g. "RUN make" (with heredoc bodies appended, as BuildKit stores it)
};
struct StopSignalInst {
  std::string signal;  ///< [expand]
};
/// HEALTHCHECK NONE | HEALTHCHECK [opts] CMD ...; durations in nanoseconds (0 = inherit default).
struct HealthcheckInst {
  std::vector<std::string> test;  ///< {"NONE"} | {"CMD", argv...} | {"CMD-SHELL", text}
  int64_t interval_ns = 0;
  int64_t timeout_ns = 0;
  int64_t start_period_ns = 0;
  int64_t start_interval_ns = 0;
  int retries = 0;
};

using Command = std::variant<FromInst, RunInst, CmdInst, EntrypointInst, ShellInst, LabelInst, MaintainerInst,
                             ExposeInst, EnvInst, CopyInst, AddInst, VolumeInst, UserInst, WorkdirInst, ArgInst,
                             OnbuildInst, StopSignalInst, HealthcheckInst>;

/// One instruction with where it came from.
struct Instruction {
  std::string keyword;   ///< upper-case name, e.g. "COPY"
  Location loc;          ///< where the keyword starts
  std::string original;  ///< the instruction text with continuations joined (BuildKit's Original)
  Command cmd;
  bool from_onbuild = false;  ///< injected from a base image's ONBUILD triggers
};

/// The upper-case names of all instructions, for messages and suggestions.
const std::vector<std::string>& AllInstructionNames();

}  // namespace kiln::dockerfile
