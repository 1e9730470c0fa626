// Row-major → cuBLAS argument mapping and the expert FFN's grouped-GEMM plans (see gemm_plan.h).
#include "gemm_plan.h"

#include <climits>
#include <string>

#include "error.h"

namespace moe::rt::cuda {

namespace {

int fit_int(int64_t v, const char* what) {
  if (v < 0 || v > INT_MAX)
    throw Error(std::string("cuBLAS argument ") + what + " = " + std::to_string(v) + " does not fit an int");
  return static_cast<int>(v);
}

}  // namespace

CublasGemm to_cublas(const RowMajorGemm& g) {
  CublasGemm c;
  c.trans_a = g.trans_b;
  c.trans_b = g.trans_a;
  c.m = fit_int(g.N, "N");
  c.n = fit_int(g.M, "M");
  c.k = fit_int(g.K, "K");
  c.lda = fit_int(g.ldb, "ldb");
  c.ldb = fit_int(g.lda, "lda");
  c.ldc = fit_int(g.ldc, "ldc");
  // The stored operands' row lengths must fit their leading dimensions.
  if (g.ldb < (g.trans_b ? g.K : g.N) || g.lda < (g.trans_a ? g.M : g.K) || g.ldc < g.N)
    throw Error("cuBLAS gemm: a leading dimension is smaller than its row (M " + std::to_string(g.M) + ", N " +
                std::to_string(g.N) + ", K " + std::to_string(g.K) + ")");
  return c;
}

const char* expert_gemm_name(ExpertGemm which) {
  switch (which) {
    case ExpertGemm::fwd_h1: return "fwd_h1";
    case ExpertGemm::fwd_h3: return "fwd_h3";
    case ExpertGemm::fwd_y: return "fwd_y";
    case ExpertGemm::bwd_dact: return "bwd_dact";
    case ExpertGemm::bwd_dw2: return "bwd_dw2";
    case ExpertGemm::bwd_dx1: return "bwd_dx1";
    case ExpertGemm::bwd_dx3: return "bwd_dx3";
    case ExpertGemm::bwd_dw1: return "bwd_dw1";
    case ExpertGemm::bwd_dw3: return "bwd_dw3";
  }
  return "?";
}

ExpertGemmOperands expert_gemm_operands(ExpertGemm which) {
  switch (which) {
    case ExpertGemm::fwd_h1: return {"x", "w1", "h1"};
    case ExpertGemm::fwd_h3: return {"x", "w3", "h3"};
    case ExpertGemm::fwd_y: return {"act", "w2", "y"};
    case ExpertGemm::bwd_dact: return {"dy", "w2", "dact"};
    case ExpertGemm::bwd_dw2: return {"dy", "act", "dw2"};
    case ExpertGemm::bwd_dx1: return {"dh1", "w1", "dx"};
    case ExpertGemm::bwd_dx3: return {"dh3", "w3", "dx"};
    case ExpertGemm::bwd_dw1: return {"dh1", "x", "dw1"};
    case ExpertGemm::bwd_dw3: return {"dh3", "x", "dw3"};
  }
  return {"?", "?", "?"};
}

GroupedGemmPlan plan_expert_gemm(ExpertGemm which, const std::vector<int64_t>& offsets, int64_t d, int64_t f) {
  if (offsets.empty() || offsets[0] != 0) throw Error("expert GEMM plan: offsets must start at 0");
  if (d <= 0 || f <= 0) throw Error("expert GEMM plan: d_model and d_expert must be positive");
  GroupedGemmPlan plan;
  plan.which = which;
  plan.beta = (which == ExpertGemm::bwd_dw1 || which == ExpertGemm::bwd_dw2 || which == ExpertGemm::bwd_dw3 ||
               which == ExpertGemm::bwd_dx3)
                  ? 1.0f
                  : 0.0f;
  const int64_t E = static_cast<int64_t>(offsets.size()) - 1;
  for (int64_t i = 0; i < E; ++i) {
    const int64_t o = offsets[i], r = offsets[i + 1] - offsets[i];
    if (r < 0) throw Error("expert GEMM plan: offsets decrease at expert " + std::to_string(i));
    if (r == 0) continue;
    const int64_t w = i * f * d;  // every weight matrix of an expert has f·d elements
    RowMajorGemm g;
    int64_t a = 0, b = 0, c = 0;
    switch (which) {
      case ExpertGemm::fwd_h1:
      case ExpertGemm::fwd_h3:  // [r×f] = x[r×d] · W[f×d]ᵀ
        g = {false, true, r, f, d, d, d, f};
        a = o * d, b = w, c = o * f;
        break;
      case ExpertGemm::fwd_y:  // [r×d] = act[r×f] · W2[d×f]ᵀ
        g = {false, true, r, d, f, f, f, d};
        a = o * f, b = w, c = o * d;
        break;
      case ExpertGemm::bwd_dact:  // [r×f] = dy[r×d] · W2[d×f]
        g = {false, false, r, f, d, d, f, f};
        a = o * d, b = w, c = o * f;
        break;
      case ExpertGemm::bwd_dw2:  // [d×f] += dy[r×d]ᵀ · act[r×f]
        g = {true, false, d, f, r, d, f, f};
        a = o * d, b = o * f, c = w;
        break;
      case ExpertGemm::bwd_dx1:
      case ExpertGemm::bwd_dx3:  // [r×d] (+)= dh[r×f] · W[f×d]
        g = {false, false, r, d, f, f, d, d};
        a = o * f, b = w, c = o * d;
        break;
      case ExpertGemm::bwd_dw1:
      case ExpertGemm::bwd_dw3:  // [f×d] += dh[r×f]ᵀ · x[r×d]
        g = {true, false, f, d, r, f, d, d};
        a = o * f, b = o * d, c = w;
        break;
    }
    plan.expert.push_back(static_cast<int>(i));
    plan.gemm.push_back(to_cublas(g));
    plan.a_offset.push_back(a);
    plan.b_offset.push_back(b);
    plan.c_offset.push_back(c);
  }
  return plan;
}

bool GroupedGemmPlan::uniform(int64_t* stride_a, int64_t* stride_b, int64_t* stride_c) const {
  if (gemm.empty()) return false;
  const CublasGemm& g0 = gemm[0];
  const int64_t sa = groups() > 1 ? a_offset[1] - a_offset[0] : 0;
  const int64_t sb = groups() > 1 ? b_offset[1] - b_offset[0] : 0;
  const int64_t sc = groups() > 1 ? c_offset[1] - c_offset[0] : 0;
  for (size_t i = 0; i < groups(); ++i) {
    const CublasGemm& g = gemm[i];
    if (g.m != g0.m || g.n != g0.n || g.k != g0.k || g.lda != g0.lda || g.ldb != g0.ldb || g.ldc != g0.ldc ||
        g.trans_a != g0.trans_a || g.trans_b != g0.trans_b)
      return false;
    const auto n = static_cast<int64_t>(i);
    if (a_offset[i] != a_offset[0] + n * sa || b_offset[i] != b_offset[0] + n * sb ||
        c_offset[i] != c_offset[0] + n * sc)
      return false;
  }
  if (stride_a) *stride_a = sa;
  if (stride_b) *stride_b = sb;
  if (stride_c) *stride_c = sc;
  return true;
}

}  // namespace moe::rt::cuda
