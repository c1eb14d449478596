// Chooses the kernel variant once, from the CPU flags.
#include "dataplane/hde/simd.h"

#include <cstdlib>

namespace dwcp::hde {

bool cpu_has_avx2()
{
	return __builtin_cpu_supports("avx2");
}

bool cpu_has_avx512()
{
	return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

const Kernels *kernels_by_name(std::string_view name)
{
	if (name == "scalar")
		return &kernels_scalar();
	if (name == "avx2")
		return cpu_has_avx2() ? &kernels_avx2() : nullptr;
	if (name == "avx512")
		return cpu_has_avx512() ? &kernels_avx512() : nullptr;
	return nullptr;
}

namespace {

const Kernels &choose()
{
	std::string_view cap = "avx512";
	if (const char *env = getenv("DWCP_HDE_ISA"))
		cap = env;
	if (cap == "avx512" && cpu_has_avx512())
		return kernels_avx512();
	if ((cap == "avx512" || cap == "avx2") && cpu_has_avx2())
		return kernels_avx2();
	if (cap != "scalar" && cpu_has_avx2())
		return kernels_avx2();
	return kernels_scalar();
}

} // namespace

const Kernels &kernels()
{
	static const Kernels &chosen = choose();
	return chosen;
}

} // namespace dwcp::hde
