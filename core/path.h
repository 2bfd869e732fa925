// Slash-separated paths taken apart and put together, for the modules that walk paths component by
// component (layers, snapshot, the sandbox, the Dockerfile frontend). Pure string work: no
// filesystem access, and nothing here interprets "." or ".." (each caller has its own rule for them).
#pragma once

#include <algorithm>
#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln {

/// The non-empty components of a slash-separated path, in order, without allocating:
///   for (std::string_view c : PathComponents("/a//b/")) ...   // "a", then "b"
/// The views point into the path, which must outlive them.
class PathComponents {
 public:
  explicit PathComponents(std::string_view path) : path_(path) {}

  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = std::string_view;
    using difference_type = std::ptrdiff_t;
    using pointer = const std::string_view*;
    using reference = std::string_view;

    Iterator() = default;
    std::string_view operator*() const { return path_.substr(begin_, end_ - begin_); }
    Iterator& operator++() {
      Seek(end_);
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      ++*this;
      return old;
    }
    bool operator==(const Iterator& o) const { return begin_ == o.begin_; }

   private:
    friend class PathComponents;
    Iterator(std::string_view path, size_t from) : path_(path) { Seek(from); }
    // Moves to the first component at or after `from`; at the end, begin_ == path_.size().
    void Seek(size_t from) {
      begin_ = path_.find_first_not_of('/', from);
      if (begin_ == std::string_view::npos) begin_ = end_ = path_.size();
      else end_ = std::min(path_.find('/', begin_), path_.size());
    }
    std::string_view path_;
    size_t begin_ = 0, end_ = 0;
  };

  Iterator begin() const { return Iterator(path_, 0); }
  Iterator end() const { return Iterator(path_, path_.size()); }

 private:
  std::string_view path_;
};

/// `dir` + "/" + `name`, or `name` alone when `dir` is empty (the root of a relative path).
std::string JoinPath(std::string_view dir, std::string_view name);

/// The directory part and the last component of a relative path without trailing '/':
/// "a/b/c" -> {"a/b", "c"}, "c" -> {"", "c"}. Views into `path`.
std::pair<std::string_view, std::string_view> SplitParent(std::string_view path);

/// The proper ancestors of a relative path, shortest first: "a/b/c" -> {"a", "a/b"}; "a" -> {}.
/// Views into `path`.
std::vector<std::string_view> PathAncestors(std::string_view path);

}  // namespace kiln
