// ProgressMeter: the periodic "still working" lines of long pulls, pushes and layer writes.
#include <gtest/gtest.h>

#include <chrono>

#include "executor/log/build_log.h"

namespace kiln::executor {
namespace {

bool Has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

TEST(ProgressMeterTest, KnownTotalGivesPercentRateAndEta) {
  MemoryBuildLog log;
  ProgressMeter meter(&log, "pushing r/app:1", 1'000'000, std::chrono::milliseconds(0));
  meter.Add(250'000);
  std::string text = log.text();
  EXPECT_TRUE(Has(text, "pushing r/app:1: 250.0 kB of 1.0 MB (25%)")) << text;
  EXPECT_TRUE(Has(text, "/s")) << text;
  EXPECT_TRUE(Has(text, "ETA ")) << text;
}

TEST(ProgressMeterTest, UnknownTotalGivesBytesAndRateOnly) {
  MemoryBuildLog log;
  ProgressMeter meter(&log, "writing the layer", 0, std::chrono::milliseconds(0));
  meter.Add(5'000'000);
  std::string text = log.text();
  EXPECT_TRUE(Has(text, "writing the layer: 5.0 MB")) << text;
  EXPECT_FALSE(Has(text, "ETA")) << text;
  EXPECT_FALSE(Has(text, "%")) << text;
}

TEST(ProgressMeterTest, QuietUntilTheIntervalHasPassed) {
  MemoryBuildLog log;
  ProgressMeter meter(&log, "pulling x", 100, std::chrono::hours(1));
  for (int i = 0; i < 100; ++i) meter.Add(1);
  EXPECT_EQ(log.text(), "") << "a short transfer prints nothing";
}

}  // namespace
}  // namespace kiln::executor
