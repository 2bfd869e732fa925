// Builder flags of one instruction (BuildKit's BFlags), with errors that point at the flag.
// Internal to the parser.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "executor/dockerfile/lexer.h"

namespace kiln::dockerfile {

class FlagSet {
 public:
  enum class Type { kBool, kString, kStrings };

  /// `keyword` is the upper-case instruction name used in messages.
  explicit FlagSet(std::string keyword) : keyword_(std::move(keyword)) {}

  void Add(const std::string& name, Type type) { defs_[name] = type; }

  /// Checks every raw flag against the definitions. Errors are formatted at the flag's location.
  Status Parse(const std::vector<RawFlag>& flags, const Source& src);

  bool Used(const std::string& name) const { return values_.count(name) > 0; }
  /// The value of a string flag, "" if not given.
  std::string String(const std::string& name) const;
  /// A bool flag: true when given as --name or --name=true.
  bool Bool(const std::string& name) const;
  /// All values of a repeatable flag, in order.
  std::vector<std::string> Strings(const std::string& name) const;
  /// Where a flag was written (the first time).
  Location Where(const std::string& name) const;

 private:
  std::string keyword_;
  std::map<std::string, Type> defs_;
  std::map<std::string, std::vector<std::string>> values_;
  std::map<std::string, Location> where_;
};

/// Go's time.ParseDuration, in nanoseconds. Errors read `time: invalid duration "x"`.
Result<int64_t> ParseGoDuration(std::string_view s);

}  // namespace kiln::dockerfile
