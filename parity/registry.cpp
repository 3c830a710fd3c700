// The fixture runner table. Each family's runners live in parity/run_<family>.cpp.
#include "parity/fixture.h"

namespace clipgen::parity {

void register_rng_runners();
void register_unet_runners();
void register_vae_runners();
void register_single_file_runners();
void register_clip_runners();
void register_svd_runners();
void register_scheduler_runners();
void register_sd_pipeline_runners();
void register_svd_pipeline_runners();

void register_all_runners() {
  register_rng_runners();
  register_unet_runners();
  register_vae_runners();
  register_single_file_runners();
  register_clip_runners();
  register_svd_runners();
  register_scheduler_runners();
  register_sd_pipeline_runners();
  register_svd_pipeline_runners();
}

}  // namespace clipgen::parity
