#pragma once
// MOE_NCCL_CHECK(call): as cuda_check.h, for NCCL calls (kept apart so only NCCL users include nccl.h).
#include <nccl.h>

#include "cuda_check.h"

#define MOE_NCCL_CHECK(call)                                                                        \
  do {                                                                                              \
    const ncclResult_t moe_status_ = (call);                                                        \
    if (moe_status_ != ncclSuccess)                                                                 \
      ::moe::rt::cuda::throw_nccl_error(static_cast<int>(moe_status_), ncclGetErrorString(moe_status_), \
                                        __FILE__, __LINE__, #call);                                 \
  } while (0)
