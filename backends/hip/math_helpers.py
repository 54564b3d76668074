"""HIP math helpers emitted only into kernels that call them (the prelude's own math is in
``renderer.GRID_AND_MATH``).

* ``tan``, ``atan``, ``erf``, ``log1p``, ``expm1``: ROCm's device library (``__ocml_*``), which
  hipRTC links; offline (``-nogpulib``) they stay undefined symbols that ``clang`` names.
* ``approx_*``: the hardware's transcendental unit, one instruction each. AMD's ISA reference
  guides (RDNA3's entries) give V_EXP_F32, V_LOG_F32, V_RCP_F32 and V_RSQ_F32 "1ULP accuracy,
  denormals are flushed".
"""

from __future__ import annotations

LIBRARY_FUNCTIONS = ("tan", "atan", "erf", "log1p", "expm1")

APPROX = r"""
// Fast approximate f32 math: v_exp_f32, v_log_f32, v_rsq_f32, v_rcp_f32 (1 ULP, subnormals
// flushed). clang 17+ names exp/log builtins; before, llvm.exp2/log2 of f32 were the bare
// instructions.
#if __has_builtin(__builtin_amdgcn_exp2f)
TV_INLINE float tv_approx_exp2(float x) { return __builtin_amdgcn_exp2f(x); }
#else
TV_INLINE float tv_approx_exp2(float x) { return __builtin_exp2f(x); }
#endif
#if __has_builtin(__builtin_amdgcn_logf)
TV_INLINE float tv_approx_log2(float x) { return __builtin_amdgcn_logf(x); }
#else
TV_INLINE float tv_approx_log2(float x) { return __builtin_log2f(x); }
#endif
TV_INLINE float tv_approx_rsqrt(float x) { return __builtin_amdgcn_rsqf(x); }
// e**x as 2**(x * log2(e)): rounding the product adds up to |x| * 2^-24 relative error.
TV_INLINE float tv_approx_exp(float x) { return tv_approx_exp2(x * 1.44269504088896341f); }
// a / b as a * (1 / b): rcp's 1 ULP and the product's rounding.
TV_INLINE float tv_approx_div(float a, float b) { return a * __builtin_amdgcn_rcpf(b); }
"""


def library_function(name: str) -> str:
    """``tv_<name>`` on float and double, from ROCm's device library."""
    return (
        f'extern "C" __device__ float __ocml_{name}_f32(float);\n'
        f'extern "C" __device__ double __ocml_{name}_f64(double);\n'
        f"TV_INLINE float tv_{name}(float x) {{ return __ocml_{name}_f32(x); }}\n"
        f"TV_INLINE double tv_{name}(double x) {{ return __ocml_{name}_f64(x); }}"
    )


__all__ = ["APPROX", "LIBRARY_FUNCTIONS", "library_function"]
