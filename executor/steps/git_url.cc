#include "executor/steps/git_url.h"

#include <cctype>
#include <map>
#include <optional>
#include <vector>

namespace kiln::executor {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The scheme of "scheme://...", lower-cased; "" when `s` has none (BuildKit: ^[a-zA-Z0-9]+://).
std::string SchemeOf(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && std::isalnum(static_cast<unsigned char>(s[i]))) ++i;
  if (i == 0 || s.substr(i, 3) != "://") return "";
  return Lower(s.substr(0, i));
}

// "user@host:path[#fragment]", BuildKit's scp-style pattern: ^([a-zA-Z0-9-_]+)@([a-zA-Z0-9-.]+):(.*)
bool IsScpStyle(std::string_view s) {
  size_t at = s.find('@');
  if (at == std::string_view::npos || at == 0) return false;
  for (char c : s.substr(0, at)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
  }
  size_t colon = s.find(':', at + 1);
  if (colon == std::string_view::npos || colon == at + 1) return false;
  for (char c : s.substr(at + 1, colon - at - 1)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
  }
  return true;
}

// The URL's path (no query, no fragment) for a "scheme://authority/path" URL.
std::string_view UrlPath(std::string_view s) {
  size_t start = s.find("://");
  std::string_view rest = s.substr(start + 3);
  rest = rest.substr(0, rest.find_first_of("?#"));
  size_t slash = rest.find('/');
  return slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
}

// Go's path.Clean of "/" + p, without the leading slash; nullopt-like "" on escape is not possible
// here because a leading "/" stops "..": callers check for ".." in the input separately.
Result<std::string> CleanSubdir(std::string_view raw) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view c = raw.substr(i, j - i);
    if (c == "..") {
      if (parts.empty()) return InvalidArgument("git subdirectory \"" + std::string(raw) + "\" leaves the repository");
      parts.pop_back();
    } else if (!c.empty() && c != ".") {
      parts.emplace_back(c);
    }
    i = j + 1;
  }
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : "/") + p;
  return out;
}

Status CheckRef(const std::string& ref, std::string_view url) {
  if (!ref.empty() && ref[0] == '-') {
    return InvalidArgument("git reference \"" + ref + "\" in " + RedactGitUrl(url) + " may not start with '-'");
  }
  for (char c : ref) {
    if (static_cast<unsigned char>(c) < 0x20 || c == ' ' || c == '~' || c == '^' || c == '?' || c == '*' ||
        c == '[' || c == '\\') {
      return InvalidArgument("git reference \"" + ref + "\" in " + RedactGitUrl(url) + " is not a valid ref name");
    }
  }
  return OkStatus();
}

// Fills ref, subdir and commit from a fragment (the text after the first '#').
Status ParseFragment(std::string_view fragment, std::string_view url, GitUrl* out) {
  if (fragment.empty()) return OkStatus();
  std::string subdir;
  if (fragment[0] == '#') {
    // BuildKit's "##key=value,..." form.
    std::string_view rest = fragment.substr(1);
    size_t i = 0;
    while (i < rest.size()) {
      size_t comma = rest.find(',', i);
      if (comma == std::string_view::npos) comma = rest.size();
      std::string_view field = rest.substr(i, comma - i);
      size_t eq = field.find('=');
      if (eq == std::string_view::npos) {
        return InvalidArgument("git URL fragment of " + RedactGitUrl(url) + ": \"" + std::string(field) +
                               "\" must be a key=value pair");
      }
      std::string key = Lower(field.substr(0, eq));
      std::string value(field.substr(eq + 1));
      if (key == "ref") out->ref = value;
      else if (key == "commit") out->commit = value;
      else if (key == "subdir") subdir = value;
      else {
        return InvalidArgument("git URL fragment of " + RedactGitUrl(url) + ": unknown key \"" + key +
                               "\" (the keys are ref, commit and subdir)");
      }
      i = comma + 1;
    }
    if (out->ref.empty()) out->ref = out->commit;
  } else {
    std::string_view ref_part = fragment;
    // Kaniko's "#REF#COMMIT": a second fragment names the commit to check out.
    if (size_t hash = fragment.find('#'); hash != std::string_view::npos) {
      ref_part = fragment.substr(0, hash);
      out->commit = std::string(fragment.substr(hash + 1));
    }
    size_t colon = ref_part.find(':');
    out->ref = std::string(ref_part.substr(0, colon));
    if (colon != std::string_view::npos) subdir = std::string(ref_part.substr(colon + 1));
  }
  KILN_RETURN_IF_ERROR(CheckRef(out->ref, url));
  if (!out->commit.empty() && !IsCommitSha(out->commit)) {
    return InvalidArgument("git URL " + RedactGitUrl(url) + ": commit \"" + out->commit + "\" is not a full 40-hex commit sha");
  }
  KILN_ASSIGN_OR_RETURN(out->subdir, CleanSubdir(subdir));
  return OkStatus();
}

// Go's url.QueryUnescape: "+" is a space, %XX a byte; a broken escape is an error.
Result<std::string> QueryUnescape(std::string_view s, std::string_view url) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%') {
      if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
          !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
        return InvalidArgument("git URL " + RedactGitUrl(url) + ": bad %-escape in the query");
      }
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// Go's strconv.ParseBool.
std::optional<bool> ParseBool(const std::string& v) {
  for (const char* t : {"1", "t", "T", "TRUE", "true", "True"}) if (v == t) return true;
  for (const char* f : {"0", "f", "F", "FALSE", "false", "False"}) if (v == f) return false;
  return std::nullopt;
}

// Applies BuildKit's query form (the text between '?' and '#') over what the fragment gave.
Status ParseQuery(std::string_view query, std::string_view url, GitUrl* out) {
  if (query.empty()) return OkStatus();
  auto fail = [&](const std::string& why) { return InvalidArgument("git URL " + RedactGitUrl(url) + ": " + why); };
  std::map<std::string, std::vector<std::string>> values;
  size_t i = 0;
  while (i <= query.size()) {
    size_t amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view field = query.substr(i, amp - i);
    i = amp + 1;
    if (field.empty()) continue;
    size_t eq = field.find('=');
    KILN_ASSIGN_OR_RETURN(std::string key, QueryUnescape(field.substr(0, eq), url));
    std::string value;
    if (eq != std::string_view::npos) {
      KILN_ASSIGN_OR_RETURN(value, QueryUnescape(field.substr(eq + 1), url));
    }
    values[key].push_back(value);
  }
  std::string tag, branch, ref = out->ref;
  std::string subdir = out->subdir;
  for (const auto& [key, v] : values) {
    if (v.size() > 1) return fail("query \"" + key + "\" has multiple values");
    const std::string& value = v[0];
    const bool flag = key == "keep-git-dir" || key == "submodules";
    if (value.empty() && !flag) return fail("query \"" + key + "\" has no value");
    if (key == "ref") {
      if (!ref.empty() && ref != value) return fail("ref conflicts: \"" + ref + "\" vs \"" + value + "\"");
      ref = value;
    } else if (key == "tag") {
      tag = value.starts_with("refs/tags/") ? value : "refs/tags/" + value;
    } else if (key == "branch") {
      branch = value.starts_with("refs/heads/") ? value : "refs/heads/" + value;
    } else if (key == "subdir") {
      KILN_ASSIGN_OR_RETURN(std::string cleaned, CleanSubdir(value));
      if (!subdir.empty() && subdir != cleaned) {
        return fail("subdir conflicts: \"" + subdir + "\" vs \"" + value + "\"");
      }
      subdir = cleaned;
    } else if (key == "checksum" || key == "commit") {
      out->checksum = value;
    } else if (flag) {
      std::optional<bool> b = value.empty() ? std::optional<bool>(true) : ParseBool(value);
      if (!b) return fail("invalid " + key + " value: \"" + value + "\"");
      (key == "submodules" ? out->submodules : out->keep_git_dir) = *b;
    } else {
      return fail("unexpected query \"" + key +
                  "\" (the keys are ref, branch, tag, subdir, checksum, keep-git-dir and submodules)");
    }
  }
  if (!tag.empty()) {
    if (!ref.empty() && ref != tag) return fail("ref conflicts: \"" + ref + "\" vs \"" + tag + "\"");
    ref = tag;
  }
  if (!branch.empty()) {
    if (!tag.empty()) return fail("branch conflicts with tag");
    if (!ref.empty() && ref != branch) return fail("ref conflicts: \"" + ref + "\" vs \"" + branch + "\"");
    ref = branch;
  }
  if (!out->checksum.empty()) {
    for (char c : out->checksum) {
      if (!std::isxdigit(static_cast<unsigned char>(c))) return fail("checksum \"" + out->checksum + "\" is not hex");
    }
    for (char& c : out->checksum) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // BuildKit checks out the checksum when nothing else names a ref; git can fetch only a full name.
    if (ref.empty() && IsCommitSha(out->checksum)) ref = out->checksum;
  }
  KILN_RETURN_IF_ERROR(CheckRef(ref, url));
  out->ref = ref;
  out->subdir = subdir;
  return OkStatus();
}

// Splits "REMOTE[?QUERY][#FRAGMENT]" into `out`.
Status SplitOptions(std::string_view s, std::string_view shown, GitUrl* out) {
  size_t hash = s.find('#');
  std::string_view before = s.substr(0, hash);
  size_t q = before.find('?');
  out->remote = std::string(before.substr(0, q));
  if (hash != std::string_view::npos) KILN_RETURN_IF_ERROR(ParseFragment(s.substr(hash + 1), shown, out));
  if (q != std::string_view::npos) KILN_RETURN_IF_ERROR(ParseQuery(before.substr(q + 1), shown, out));
  return OkStatus();
}

}  // namespace

bool IsCommitSha(std::string_view s) {
  if (s.size() != 40) return false;
  for (char c : s) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) || std::isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool IsGitUrl(std::string_view s) {
  std::string scheme = SchemeOf(s);
  if (scheme == "git" || scheme == "ssh") return true;
  if (scheme == "http" || scheme == "https" || scheme == "file") return UrlPath(s).ends_with(".git");
  if (!scheme.empty()) return false;
  return IsScpStyle(s);
}

Result<GitUrl> ParseGitUrl(std::string_view s) {
  if (!IsGitUrl(s)) return InvalidArgument("\"" + RedactGitUrl(s) + "\" is not a git repository URL");
  GitUrl out;
  out.scp_style = SchemeOf(s).empty();
  KILN_RETURN_IF_ERROR(SplitOptions(s, s, &out));
  if (out.remote.empty() || out.remote.ends_with("://")) {
    return InvalidArgument("git URL \"" + RedactGitUrl(s) + "\" names no repository");
  }
  return out;
}

Result<GitUrl> ParseGitContext(std::string_view spec, std::string_view pull_method) {
  if (SchemeOf(spec) != "git") return ParseGitUrl(spec);
  // Kaniko clones "git://" contexts over HTTPS (or HTTP with GIT_PULL_METHOD=http): the scheme names
  // the kind of context, not git's own protocol.
  std::string scheme = pull_method == "http" ? "http" : "https";
  std::string rewritten = scheme + "://" + std::string(spec.substr(6));
  GitUrl out;
  KILN_RETURN_IF_ERROR(SplitOptions(rewritten, spec, &out));
  if (UrlPath(out.remote).empty()) return InvalidArgument("git context \"" + RedactGitUrl(spec) + "\" names no repository");
  return out;
}

std::string RedactGitUrl(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return std::string(url);
  size_t start = scheme + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string_view authority = url.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  std::string_view user = authority.substr(0, at);
  size_t colon = user.find(':');
  std::string kept = colon == std::string_view::npos ? "xxxxx" : std::string(user.substr(0, colon)) + ":xxxxx";
  return std::string(url.substr(0, start)) + kept + std::string(authority.substr(at)) +
         (end == std::string_view::npos ? "" : std::string(url.substr(end)));
}

}  // namespace kiln::executor
