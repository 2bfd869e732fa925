// ArchiveInput: libarchive reads a tar from a kiln Reader, in small buffers, and a Reader's own error
// survives libarchive's generic "read failed".
#include "layers/archive_input.h"

#include <archive.h>
#include <archive_entry.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tests/layers/hostile_tar.h"

namespace kiln::layers {
namespace {

using testing::TarBuilder;

struct ArchiveFree {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<struct archive, ArchiveFree>;

ArchivePtr NewTarReader() {
  ArchivePtr a(archive_read_new());
  archive_read_support_format_tar(a.get());
  return a;
}

// Serves `data` a few bytes at a time, then fails with `error` instead of reaching the end (when set).
class ChoppyReader : public Reader {
 public:
  ChoppyReader(std::string data, size_t chunk, Status error = OkStatus())
      : data_(std::move(data)), chunk_(chunk), error_(std::move(error)) {}
  Result<size_t> Read(void* buf, size_t n) override {
    ++reads_;
    if (pos_ == data_.size() && !error_.ok()) return error_;
    size_t k = std::min({n, chunk_, data_.size() - pos_});
    std::memcpy(buf, data_.data() + pos_, k);
    pos_ += k;
    return k;
  }
  int reads() const { return reads_; }

 private:
  std::string data_;
  size_t chunk_;
  Status error_;
  size_t pos_ = 0;
  int reads_ = 0;
};

TEST(ArchiveInputTest, LibarchiveReadsEntriesAndDataThroughTheReader) {
  std::string body(5000, 'x');
  std::string tar = TarBuilder().Add({.name = "a.txt", .content = "hello"}).Add({.name = "big", .content = body}).Finish();
  ChoppyReader reader(tar, 700);
  ArchiveInput input(reader, 512);
  ArchivePtr a = NewTarReader();
  ASSERT_EQ(input.Open(a.get()), ARCHIVE_OK);
  std::vector<std::pair<std::string, std::string>> got;
  struct archive_entry* ae = nullptr;
  while (archive_read_next_header(a.get(), &ae) == ARCHIVE_OK) {
    std::string data(static_cast<size_t>(archive_entry_size(ae)), '\0');
    ASSERT_EQ(archive_read_data(a.get(), data.data(), data.size()), static_cast<la_ssize_t>(data.size()));
    got.emplace_back(archive_entry_pathname(ae), data);
  }
  EXPECT_TRUE(input.status().ok()) << input.status().message();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], (std::pair<std::string, std::string>{"a.txt", "hello"}));
  EXPECT_EQ(got[1].first, "big");
  EXPECT_EQ(got[1].second, body);
  EXPECT_GE(reader.reads(), static_cast<int>(tar.size() / 512));  // never more than the buffer at once
}

TEST(ArchiveInputTest, TheReadersErrorIsKept) {
  std::string tar = TarBuilder().Add({.name = "f", .content = std::string(4000, 'y')}).Finish();
  // The stream breaks in the middle of the file's data.
  ChoppyReader reader(tar.substr(0, 1024), 1024, DigestMismatch("blob sha256:ab12 does not match"));
  ArchiveInput input(reader);
  ArchivePtr a = NewTarReader();
  ASSERT_EQ(input.Open(a.get()), ARCHIVE_OK);
  struct archive_entry* ae = nullptr;
  ASSERT_EQ(archive_read_next_header(a.get(), &ae), ARCHIVE_OK);
  std::string data(4000, '\0');
  EXPECT_LT(archive_read_data(a.get(), data.data(), data.size()), 0);
  EXPECT_EQ(input.status().code(), ErrorCode::kDigestMismatch);
  EXPECT_EQ(input.status().message(), "blob sha256:ab12 does not match");
  EXPECT_NE(std::string(archive_error_string(a.get())).find("blob sha256:ab12 does not match"), std::string::npos);
}

}  // namespace
}  // namespace kiln::layers
