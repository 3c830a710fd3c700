// cmake/ClipgenDeps.cmake links libstdc++ as the first shared library of every program, so that a library
// exporting its own copy of libstdc++ symbols (PyTorch's wheels do, for std::filesystem) cannot capture
// our calls. tests/core/fs_interposer.cpp is such a library; this executable links it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "core/fs.h"
#include "tests/test_util.h"

extern "C" int clipgen_fs_interposer_loaded();

namespace fs = std::filesystem;

TEST(LinkOrder, StdFilesystemBindsToLibstdcxxNotToAnEarlierCopy) {
  ASSERT_EQ(clipgen_fs_interposer_loaded(), 1);  // the interposing copy is really in the process
  const auto root = clipgen::test::scratch_dir("libstdcxx_first") / "tree";
  fs::create_directories(root / "sub");
  std::ofstream(root / "a.txt") << "a";
  std::ofstream(root / "sub" / "b.txt") << "b";
  // libstdc++'s remove_all removes the four entries; the interposer's would return 424242 and keep them.
  EXPECT_EQ(fs::remove_all(root), 4u);
  EXPECT_FALSE(fs::exists(root));
}

// Nor to a static copy linked into the executable (what `-lstdc++` gives on a toolchain that finds only
// libstdc++.a): the function must live in the shared libstdc++.so.6 everyone else uses (core/fs.h's
// cxx_runtime(), which `clipgen version` prints, says where it lives).
TEST(LinkOrder, StdFilesystemLivesInTheSharedLibstdcxx) {
  const std::string r = clipgen::cxx_runtime();  // the file that holds remove_all, or a WARNING
  EXPECT_NE(r.find("libstdc++.so"), std::string::npos) << r;
  EXPECT_EQ(r.find("WARNING"), std::string::npos) << r;
}
