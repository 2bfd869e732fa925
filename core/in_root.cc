#include "core/in_root.h"

#include <cerrno>

#include "core/path.h"

namespace kiln {
namespace {

// Puts the components of `path` in front of `todo`, in order ("." dropped).
void PushFront(std::deque<std::string>& todo, std::string_view path) {
  std::vector<std::string> parts;
  for (std::string_view c : PathComponents(path)) {
    if (c != ".") parts.emplace_back(c);
  }
  todo.insert(todo.begin(), parts.begin(), parts.end());
}

}  // namespace

std::string InRootPath::Joined() const {
  std::string out;
  for (const std::string& c : components) {
    if (!out.empty()) out += '/';
    out += c;
  }
  return out;
}

Result<InRootPath> ResolveInRoot(std::string_view path, const std::vector<std::string>& start, InRootWalker& walker,
                                 const InRootOptions& options) {
  std::deque<std::string> todo;
  PushFront(todo, path);
  if (path.empty() || path.front() != '/') todo.insert(todo.begin(), start.begin(), start.end());
  KILN_RETURN_IF_ERROR(walker.Restart());
  InRootPath out;
  std::vector<std::string>& done = out.components;
  size_t entered = 0;  // done[0, entered) are directories the walker entered
  int links = 0;
  bool lexical = false;  // a component was missing and the rest is taken as written
  while (!todo.empty()) {
    std::string c = std::move(todo.front());
    todo.pop_front();
    if (c == "..") {
      if (done.empty()) continue;  // `..` of the root is the root
      if (entered == done.size()) {
        KILN_RETURN_IF_ERROR(walker.Leave());
        --entered;
      }
      done.pop_back();
      continue;
    }
    done.push_back(std::move(c));
    const bool last = todo.empty();
    InRootStep step = InRootStep::kLook;
    if (options.step) {
      KILN_ASSIGN_OR_RETURN(step, options.step(done, todo));
    }
    if (step == InRootStep::kRestartAtRoot) {
      done.clear();
      entered = 0;
      KILN_RETURN_IF_ERROR(walker.Restart());
      continue;
    }
    // Looking needs the walker on the parent: true unless something before was taken as written.
    if (step == InRootStep::kTakeAsWritten || lexical || (last && !options.follow_last) || entered + 1 != done.size()) {
      out.last_kind = InRootWalker::Kind::kMissing;
      continue;
    }
    KILN_ASSIGN_OR_RETURN(InRootWalker::Entry e, walker.Look(done.back()));
    switch (e.kind) {
      case InRootWalker::Kind::kMissing:
        out.last_kind = InRootWalker::Kind::kMissing;
        if (options.after_missing == InRootOptions::AfterMissing::kLexical) {
          lexical = true;
          continue;
        }
        out.stop = InRootPath::Stop::kMissing;
        out.unresolved.assign(todo.begin(), todo.end());
        return out;
      case InRootWalker::Kind::kSymlink:
        if (++links > options.max_links) {
          out.stop = InRootPath::Stop::kLoop;
          return out;
        }
        done.pop_back();  // the link's directory is where a relative target starts
        if (!e.link_target.empty() && e.link_target.front() == '/') {
          done.clear();
          entered = 0;
          KILN_RETURN_IF_ERROR(walker.Restart());
        }
        PushFront(todo, e.link_target);
        continue;
      case InRootWalker::Kind::kOther:
        out.last_kind = InRootWalker::Kind::kOther;
        if (!last) {
          out.stop = InRootPath::Stop::kNotDirectory;
          out.unresolved.assign(todo.begin(), todo.end());
          return out;
        }
        continue;
      case InRootWalker::Kind::kDirectory:
        out.last_kind = InRootWalker::Kind::kDirectory;
        KILN_RETURN_IF_ERROR(walker.Enter(done.back()));
        ++entered;
        continue;
    }
  }
  return out;
}

}  // namespace kiln
