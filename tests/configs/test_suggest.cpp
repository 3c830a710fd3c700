#include <gtest/gtest.h>

#include "configs/suggest.h"

using namespace clipgen::configs;

TEST(Suggest, EditDistance) {
  EXPECT_EQ(edit_distance("", ""), 0);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3);  // the classic Levenshtein example
  EXPECT_EQ(edit_distance("fps", "fsp"), 1);         // adjacent swap counts once
  EXPECT_EQ(edit_distance("steps", "stpes"), 1);
  EXPECT_EQ(edit_distance("abc", ""), 3);
}

TEST(Suggest, ClosestMatch) {
  const std::vector<std::string> keys = {"prompt", "negative_prompt", "steps", "seed", "fps"};
  EXPECT_EQ(closest_match("promt", keys), "prompt");
  EXPECT_EQ(closest_match("sed", keys), "seed");
  EXPECT_EQ(closest_match("xyz", keys), "");                                        // nothing close
  EXPECT_EQ(closest_match("id", {"fps"}), "");                                      // short words need a close match
  EXPECT_EQ(closest_match("reels", {"hd", "instagram-reels"}), "instagram-reels");  // substring fallback
  EXPECT_EQ(did_you_mean("stpes", keys), " (did you mean 'steps'?)");
  EXPECT_EQ(did_you_mean("zzzzzz", keys), "");
}
