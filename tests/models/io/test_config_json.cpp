// models/io/config_json: the one "unsupported config value" error of the model configs, and the checked
// conversions they share.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/io/config_json.h"
#include "tests/test_util.h"

using namespace clipgen;
using nlohmann::json;

TEST(ConfigJson, UnsupportedNamesFileClassKeyValueAndWhy) {
  const io::ConfigJson cj("unet/config.json", "UNet2DConditionModel");
  EXPECT_EQ(test::error_message<UnsupportedError>([&] { cj.unsupported("act_fn", json("gelu")); }),
            "unet/config.json: unsupported UNet2DConditionModel config act_fn=\"gelu\"");
  EXPECT_EQ(test::error_message<UnsupportedError>([&] { cj.unsupported("norm_num_groups", json(2.5), "expected an integer"); }),
            "unet/config.json: unsupported UNet2DConditionModel config norm_num_groups=2.5 (expected an integer)");
}

TEST(ConfigJson, IntOrList) {
  const io::ConfigJson cj("c.json", "X");
  EXPECT_EQ(cj.int_or_list(json(2), "k"), (std::vector<int64_t>{2}));
  EXPECT_EQ(cj.int_or_list(json::array({1, 2, 10}), "k"), (std::vector<int64_t>{1, 2, 10}));
  const std::string why = "(expected an integer or a list of integers)";
  for (const auto& bad : {json::array(), json::array({1, 2.5}), json("2"), json(nullptr), json::array({json::array({1})})}) {
    const auto m = test::error_message<UnsupportedError>([&] { cj.int_or_list(bad, "layers_per_block"); });
    EXPECT_EQ(m, "c.json: unsupported X config layers_per_block=" + bad.dump() + " " + why) << bad.dump();
  }
}

TEST(ConfigJson, PositiveInt) {
  const io::ConfigJson cj("c.json", "X");
  EXPECT_EQ(cj.positive_int(json(25), "num_frames"), 25);
  for (const auto& bad : {json(0), json(-3), json(1.5), json("25")})
    EXPECT_EQ(test::error_message<UnsupportedError>([&] { cj.positive_int(bad, "num_frames"); }),
              "c.json: unsupported X config num_frames=" + bad.dump() + " (expected a positive integer)")
        << bad.dump();
}
