#include "executor/dockerfile/instruction_parser.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "executor/dockerfile/flags.h"
#include "executor/dockerfile/mount.h"
#include "executor/dockerfile/words.h"

namespace kiln::dockerfile {

const std::vector<std::string>& AllInstructionNames() {
  static const auto* names = new std::vector<std::string>{
      "ADD",     "ARG",        "CMD",   "COPY",  "ENTRYPOINT", "ENV",   "EXPOSE",     "FROM",  "HEALTHCHECK",
      "LABEL",   "MAINTAINER", "ONBUILD", "RUN", "SHELL",      "STOPSIGNAL", "USER", "VOLUME", "WORKDIR"};
  return *names;
}

namespace {

class InstructionParser {
 public:
  InstructionParser(const Source& src, const LogicalLine& ll, char escape, std::vector<std::string>* warnings)
      : src_(src), ll_(ll), escape_(escape), warnings_(warnings), kw_(AsciiUpper(ll.keyword)) {}

  Result<Instruction> Parse() {
    Instruction inst;
    inst.keyword = kw_;
    inst.loc = ll_.loc;
    inst.original = ll_.original;
    Result<Command> cmd = Dispatch();
    if (!cmd.ok()) return cmd.status();
    inst.cmd = std::move(*cmd);
    return inst;
  }

 private:
  Status Err(std::string_view msg) const { return src_.ErrorAt(ll_.args.empty() ? ll_.loc : ll_.args_loc, msg); }
  Status ErrAt(size_t offset, std::string_view msg) const { return src_.ErrorAt(ll_.At(offset), msg); }

  Status NoFlags() {
    FlagSet flags(kw_);
    return flags.Parse(ll_.flags, src_);
  }

  // Text after a JSON array is dropped (BuildKit, Buildah and Kaniko all read the first JSON value
  // only); say so, since a trailing `# comment` there is a common slip.
  void WarnTrailing(const std::string& trailing) {
    if (trailing.empty() || warnings_ == nullptr) return;
    size_t at = ll_.args_offset + ll_.args.size() - std::min(trailing.size(), ll_.args.size());
    std::string shown = trailing.size() > 40 ? trailing.substr(0, 40) + "..." : trailing;
    warnings_->push_back(src_.Format(ll_.At(at), kw_ + " is a JSON array followed by \"" + shown +
                                                     "\", which is ignored ('#' starts a comment only at the "
                                                     "beginning of a line)"));
  }

  // parseMaybeJSON for RUN/CMD/ENTRYPOINT.
  Result<CommandLine> CommandForm() {
    CommandLine c;
    std::vector<std::string> argv;
    std::string trailing;
    switch (ParseJsonArgs(ll_.args, &argv, &trailing)) {
      case JsonArgs::kOk:
        WarnTrailing(trailing);
        c.exec_form = true;
        c.args = std::move(argv);
        return c;
      case JsonArgs::kNotStrings:
        return Err("when using JSON array syntax, arrays must be comprised of strings only");
      case JsonArgs::kNotJson:
        break;
    }
    if (!ll_.args.empty() && ll_.args[0] == '[' && warnings_ != nullptr) {
      warnings_->push_back(src_.Format(ll_.args_loc, kw_ + " arguments start with '[' but are not a valid JSON array of strings; they run as a shell command"));
    }
    // handleJSONArgs: an empty shell form is an empty command (CMD alone becomes the bare shell,
    // ENTRYPOINT alone clears the entrypoint), never one empty argument.
    if (!ll_.args.empty()) c.args.push_back(ll_.args);
    return c;
  }

  // parseMaybeJSONToList for ADD/COPY/VOLUME.
  Result<std::vector<Word>> ListForm(bool* json) {
    std::vector<std::string> argv;
    std::string trailing;
    switch (ParseJsonArgs(ll_.args, &argv, &trailing)) {
      case JsonArgs::kOk: {
        WarnTrailing(trailing);
        *json = true;
        std::vector<Word> out;
        for (auto& a : argv) out.push_back({std::move(a), ll_.args_offset});
        return out;
      }
      case JsonArgs::kNotStrings:
        return Err("when using JSON array syntax, arrays must be comprised of strings only");
      case JsonArgs::kNotJson:
        break;
    }
    *json = false;
    return SplitWhitespace(ll_);
  }

  // parseNameVal for ENV and LABEL.
  Result<std::vector<KeyValue>> NameVal() {
    std::vector<Word> words = ParseWords(ll_, escape_);
    if (words.empty()) return Err(kw_ + " requires at least one argument");
    std::vector<KeyValue> out;
    if (words[0].text.find('=') == std::string::npos) {
      // Legacy form `ENV key value`: the key, then the rest of the line verbatim.
      const std::string& a = ll_.args;
      size_t k = 0;
      while (k < a.size() && !IsReWhitespace(a[k])) ++k;
      size_t v = k;
      while (v < a.size() && IsReWhitespace(a[v])) ++v;
      if (k == a.size()) return Err(kw_ + " must have two arguments");
      if (warnings_ != nullptr) {
        warnings_->push_back(src_.Format(ll_.loc, "legacy key/value format with whitespace separator should not be used; use " + kw_ + " " + a.substr(0, k) + "=<value>"));
      }
      out.push_back({a.substr(0, k), a.substr(v)});
      return out;
    }
    for (const Word& w : words) {
      size_t eq = w.text.find('=');
      if (eq == std::string::npos)
        return ErrAt(w.offset, "syntax error - can't find = in \"" + w.text + "\". Must be of the form: name=value");
      if (eq == 0) return ErrAt(w.offset, kw_ + " names can not be blank");
      out.push_back({w.text.substr(0, eq), w.text.substr(eq + 1)});
    }
    return out;
  }

  Result<std::string> ExactlyOne() {
    if (ll_.args.empty()) return Err(kw_ + " requires exactly one argument");
    return ll_.args;
  }

  Result<Command> Dispatch() {
    std::string kw = AsciiLower(ll_.keyword);
    if (kw == "from") return From();
    if (kw == "run") return Run();
    if (kw == "cmd") {
      KILN_RETURN_IF_ERROR(NoFlags());
      KILN_ASSIGN_OR_RETURN(CommandLine c, CommandForm());
      return Command(CmdInst{std::move(c)});
    }
    if (kw == "entrypoint") {
      KILN_RETURN_IF_ERROR(NoFlags());
      KILN_ASSIGN_OR_RETURN(CommandLine c, CommandForm());
      return Command(EntrypointInst{std::move(c)});
    }
    if (kw == "shell") {
      KILN_RETURN_IF_ERROR(NoFlags());
      std::vector<std::string> argv;
      switch (ParseJsonArgs(ll_.args, &argv)) {
        case JsonArgs::kOk:
          if (argv.empty()) return Err("SHELL requires at least one argument");
          return Command(ShellInst{std::move(argv)});
        case JsonArgs::kNotStrings:
          return Err("when using JSON array syntax, arrays must be comprised of strings only");
        case JsonArgs::kNotJson:
          return Err("SHELL requires the arguments to be in JSON form, e.g. SHELL [\"/bin/sh\", \"-c\"]");
      }
    }
    if (kw == "label") {
      KILN_RETURN_IF_ERROR(NoFlags());
      KILN_ASSIGN_OR_RETURN(std::vector<KeyValue> kv, NameVal());
      return Command(LabelInst{std::move(kv)});
    }
    if (kw == "env") {
      KILN_RETURN_IF_ERROR(NoFlags());
      KILN_ASSIGN_OR_RETURN(std::vector<KeyValue> kv, NameVal());
      return Command(EnvInst{std::move(kv)});
    }
    if (kw == "maintainer") {
      KILN_RETURN_IF_ERROR(NoFlags());
      KILN_ASSIGN_OR_RETURN(std::string v, ExactlyOne());
      if (warnings_ != nullptr) warnings_->push_back(src_.Format(ll_.loc, "MAINTAINER instruction is deprecated in favor of using LABEL"));
      return Command(MaintainerInst{std::move(v)});
    }
    if (kw == "expose") {
      KILN_RETURN_IF_ERROR(NoFlags());
      std::vector<Word> words = SplitWhitespace(ll_);
      if (words.empty()) return Err("EXPOSE requires at least one argument");
      ExposeInst e;
      for (auto& w : words) e.ports.push_back(std::move(w.text));
      std::sort(e.ports.begin(), e.ports.end());
      return Command(std::move(e));
    }
    if (kw == "copy" || kw == "add") return CopyOrAdd(kw == "add");
    if (kw == "volume") {
      KILN_RETURN_IF_ERROR(NoFlags());
      bool json = false;
      KILN_ASSIGN_OR_RETURN(std::vector<Word> words, ListForm(&json));
      if (words.empty()) return Err("VOLUME requires at least one argument");
      VolumeInst v;
      for (const Word& w : words) {
        size_t s = 0, e = w.text.size();
        while (s < e && IsGoSpace(w.text[s])) ++s;
        while (e > s && IsGoSpace(w.text[e - 1])) --e;
        if (s == e) return Err("VOLUME specified can not be an empty string");
        v.paths.push_back(w.text.substr(s, e - s));
      }
      return Command(std::move(v));
    }
    if (kw == "user") {
      KILN_RETURN_IF_ERROR(NoFlags());
      KILN_ASSIGN_OR_RETURN(std::string v, ExactlyOne());
      return Command(UserInst{std::move(v)});
    }
    if (kw == "workdir") {
      KILN_RETURN_IF_ERROR(NoFlags());
      KILN_ASSIGN_OR_RETURN(std::string v, ExactlyOne());
      return Command(WorkdirInst{std::move(v)});
    }
    if (kw == "stopsignal") {
      KILN_RETURN_IF_ERROR(NoFlags());
      KILN_ASSIGN_OR_RETURN(std::string v, ExactlyOne());
      return Command(StopSignalInst{std::move(v)});
    }
    if (kw == "arg") return Arg();
    if (kw == "onbuild") return Onbuild();
    if (kw == "healthcheck") return Healthcheck();
    return src_.ErrorAt(ll_.loc, "unknown instruction: " + ll_.keyword + DidYouMean(ll_.keyword, AllInstructionNames(), true));
  }

  Result<Command> From() {
    FlagSet flags("FROM");
    flags.Add("platform", FlagSet::Type::kString);
    std::vector<Word> words = SplitWhitespace(ll_);
    FromInst f;
    if (words.size() == 3 && AsciiLower(words[1].text) == "as") {
      f.stage_name = AsciiLower(words[2].text);
      bool valid = !f.stage_name.empty() && std::islower(static_cast<unsigned char>(f.stage_name[0]));
      for (char c : f.stage_name) {
        valid = valid && (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
                          c == '-' || c == '_' || c == '.');
      }
      if (!valid) {
        return ErrAt(words[2].offset, "invalid name for build stage: \"" + words[2].text +
                                          "\", name can't start with a number or contain symbols");
      }
    } else if (words.size() != 1) {
      return Err("FROM requires either one or three arguments");
    }
    KILN_RETURN_IF_ERROR(flags.Parse(ll_.flags, src_));
    f.image = words[0].text;
    f.platform = flags.String("platform");
    return Command(std::move(f));
  }

  Result<Command> Run() {
    FlagSet flags("RUN");
    flags.Add("mount", FlagSet::Type::kStrings);
    flags.Add("network", FlagSet::Type::kString);
    flags.Add("security", FlagSet::Type::kString);
    KILN_RETURN_IF_ERROR(flags.Parse(ll_.flags, src_));
    RunInst r;
    for (const std::string& m : flags.Strings("mount")) {
      Result<MountSpec> spec = ParseMountSpec(m);
      if (!spec.ok()) return src_.ErrorAt(flags.Where("mount"), spec.status().message());
      r.mounts.push_back(std::move(*spec));
    }
    r.network = flags.String("network");
    if (flags.Used("network") && r.network != "default" && r.network != "none" && r.network != "host") {
      return src_.ErrorAt(flags.Where("network"), "unsupported network mode \"" + r.network + "\"" +
                                                     DidYouMean(r.network, {"default", "none", "host"}, false));
    }
    r.security = flags.String("security");
    if (flags.Used("security") && r.security != "sandbox" && r.security != "insecure") {
      return src_.ErrorAt(flags.Where("security"), "unsupported security mode \"" + r.security + "\"" +
                                                      DidYouMean(r.security, {"sandbox", "insecure"}, false));
    }
    KILN_ASSIGN_OR_RETURN(r.cmd, CommandForm());
    if (!r.cmd.exec_form) r.cmd.heredocs = ll_.heredocs;
    return Command(std::move(r));
  }

  Result<Command> CopyOrAdd(bool add) {
    FlagSet flags(add ? "ADD" : "COPY");
    flags.Add("chown", FlagSet::Type::kString);
    flags.Add("chmod", FlagSet::Type::kString);
    flags.Add("link", FlagSet::Type::kBool);
    flags.Add("exclude", FlagSet::Type::kStrings);
    if (add) {
      flags.Add("checksum", FlagSet::Type::kString);
      flags.Add("keep-git-dir", FlagSet::Type::kBool);
      flags.Add("unpack", FlagSet::Type::kBool);
    } else {
      flags.Add("from", FlagSet::Type::kString);
      flags.Add("parents", FlagSet::Type::kBool);
    }
    bool json = false;
    KILN_ASSIGN_OR_RETURN(std::vector<Word> words, ListForm(&json));
    if (words.size() < 2) {
      return Err(kw_ + " requires at least two arguments, but only one was provided. Destination could not be determined");
    }
    KILN_RETURN_IF_ERROR(flags.Parse(ll_.flags, src_));
    CopyCommon c;
    c.json = json;
    c.dest = words.back().text;
    Heredoc h;
    if (!json) {
      Result<bool> is = ParseHeredocWord(c.dest, &h);
      if (is.ok() && *is) return ErrAt(words.back().offset, kw_ + " cannot accept a heredoc as a destination");
    }
    for (size_t i = 0; i + 1 < words.size(); ++i) {
      Result<bool> is = json ? Result<bool>(false) : ParseHeredocWord(words[i].text, &h);
      if (!is.ok()) return ErrAt(words[i].offset, is.status().message());
      if (!*is) {
        c.sources.push_back(words[i].text);
        continue;
      }
      InlineSource in;
      in.path = h.name;
      in.expand = h.expand;
      for (const Heredoc& doc : ll_.heredocs) {
        if (doc.name == h.name) in.data = doc.content;
      }
      c.inline_sources.push_back(std::move(in));
    }
    c.chown = flags.String("chown");
    c.chmod = flags.String("chmod");
    c.link = flags.Bool("link");
    c.excludes = flags.Strings("exclude");
    if (add) {
      AddInst a;
      static_cast<CopyCommon&>(a) = std::move(c);
      a.checksum = flags.String("checksum");
      a.keep_git_dir = flags.Bool("keep-git-dir");
      if (flags.Used("unpack")) a.unpack = flags.Bool("unpack");
      return Command(std::move(a));
    }
    CopyInst cp;
    static_cast<CopyCommon&>(cp) = std::move(c);
    cp.from = flags.String("from");
    cp.parents = flags.Bool("parents");
    if (flags.Used("from") && cp.from.empty()) return src_.ErrorAt(flags.Where("from"), "missing a value on flag: --from");
    return Command(std::move(cp));
  }

  Result<Command> Arg() {
    KILN_RETURN_IF_ERROR(NoFlags());
    std::vector<Word> words = ParseWords(ll_, escape_);
    if (words.empty()) return Err("ARG requires at least one argument");
    ArgInst a;
    for (const Word& w : words) {
      ArgDecl d;
      size_t eq = w.text.find('=');
      if (eq == std::string::npos) {
        d.key = w.text;
      } else {
        if (eq == 0) return ErrAt(w.offset, "ARG names can not be blank");
        d.key = w.text.substr(0, eq);
        d.value = w.text.substr(eq + 1);
      }
      a.args.push_back(std::move(d));
    }
    return Command(std::move(a));
  }

  Result<Command> Onbuild() {
    KILN_RETURN_IF_ERROR(NoFlags());
    if (ll_.args.empty()) return Err("ONBUILD requires at least one argument");
    size_t k = 0;
    while (k < ll_.args.size() && !IsReWhitespace(ll_.args[k])) ++k;
    std::string trigger = AsciiUpper(ll_.args.substr(0, k));
    if (trigger == "ONBUILD") return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
    if (trigger == "MAINTAINER" || trigger == "FROM") return Err(trigger + " isn't allowed as an ONBUILD trigger");
    // (?i)^\s*ONBUILD\s* removed from the original line.
    std::string expr = ll_.original.substr(ll_.keyword.size());
    size_t s = 0;
    while (s < expr.size() && IsGoSpace(expr[s])) ++s;
    expr = expr.substr(s);
    // BuildKit keeps a trigger's heredocs by appending each body and its delimiter, so the trigger
    // re-parses to the same instruction in the child build.
    for (const Heredoc& h : ll_.heredocs) expr += "\n" + h.content + h.name;
    return Command(OnbuildInst{std::move(expr)});
  }

  Result<Command> Healthcheck() {
    const std::string& rest = ll_.args;
    size_t sep = 0;
    while (sep < rest.size() && !IsGoSpace(rest[sep])) ++sep;
    size_t next = sep;
    while (next < rest.size() && IsGoSpace(rest[next])) ++next;
    if (sep == 0) return Err("HEALTHCHECK requires at least one argument");
    std::string typ = AsciiUpper(rest.substr(0, sep));
    std::string cmdtext = rest.substr(next);
    HealthcheckInst h;
    if (typ == "NONE") {
      if (!cmdtext.empty()) return ErrAt(ll_.args_offset + next, "HEALTHCHECK NONE takes no arguments");
      h.test = {"NONE"};
      return Command(std::move(h));
    }
    FlagSet flags("HEALTHCHECK");
    for (const char* f : {"interval", "timeout", "start-period", "start-interval", "retries"}) flags.Add(f, FlagSet::Type::kString);
    KILN_RETURN_IF_ERROR(flags.Parse(ll_.flags, src_));
    if (typ != "CMD") return Err("unknown type \"" + typ + "\" in HEALTHCHECK (try CMD)");
    std::vector<std::string> argv;
    switch (ParseJsonArgs(cmdtext, &argv)) {
      case JsonArgs::kOk:
        if (argv.empty()) return Err("missing command after HEALTHCHECK CMD");
        h.test = {"CMD"};
        h.test.insert(h.test.end(), argv.begin(), argv.end());
        break;
      case JsonArgs::kNotStrings:
        return ErrAt(ll_.args_offset + next, "when using JSON array syntax, arrays must be comprised of strings only");
      case JsonArgs::kNotJson:
        if (cmdtext.empty()) return Err("missing command after HEALTHCHECK CMD");
        h.test = {"CMD-SHELL", cmdtext};
        break;
    }
    struct {
      const char* name;
      int64_t* out;
    } durations[] = {{"interval", &h.interval_ns},
                     {"timeout", &h.timeout_ns},
                     {"start-period", &h.start_period_ns},
                     {"start-interval", &h.start_interval_ns}};
    for (auto& d : durations) {
      std::string v = flags.String(d.name);
      if (v.empty()) continue;
      Result<int64_t> ns = ParseGoDuration(v);
      if (!ns.ok()) return src_.ErrorAt(flags.Where(d.name), ns.status().message());
      if (*ns != 0 && *ns < 1000000) {
        return src_.ErrorAt(flags.Where(d.name), "interval \"" + std::string(d.name) + "\" cannot be less than 1ms");
      }
      *d.out = *ns;
    }
    std::string retries = flags.String("retries");
    if (!retries.empty()) {
      char* end = nullptr;
      errno = 0;
      long long n = std::strtoll(retries.c_str(), &end, 10);
      if (end == retries.c_str() || *end != '\0' || errno != 0 || n > INT32_MAX || n < INT32_MIN) {
        return src_.ErrorAt(flags.Where("retries"), "invalid value for --retries: \"" + retries + "\" is not a number");
      }
      if (n < 0) return src_.ErrorAt(flags.Where("retries"), "--retries cannot be negative (" + retries + ")");
      h.retries = static_cast<int>(n);
    }
    return Command(std::move(h));
  }

  const Source& src_;
  const LogicalLine& ll_;
  char escape_;
  std::vector<std::string>* warnings_;
  std::string kw_;
};

}  // namespace

Result<Instruction> ParseInstruction(const Source& src, const LogicalLine& ll, char escape,
                                     std::vector<std::string>* warnings) {
  return InstructionParser(src, ll, escape, warnings).Parse();
}

}  // namespace kiln::dockerfile
