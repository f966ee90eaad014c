/* Compile-time proof that the ABI's tensor structs keep DLPack's layout (x86_64/aarch64, LP64). */
#include "quac_plugin.h"

_Static_assert(sizeof(quac_device) == 8, "DLDevice is two int32");
_Static_assert(sizeof(quac_dtype) == 4, "DLDataType is uint8, uint8, uint16");
_Static_assert(offsetof(quac_tensor, data) == 0, "DLTensor.data first");
_Static_assert(offsetof(quac_tensor, device) == 8, "DLTensor.device");
_Static_assert(offsetof(quac_tensor, ndim) == 16, "DLTensor.ndim");
_Static_assert(offsetof(quac_tensor, dtype) == 20, "DLTensor.dtype");
_Static_assert(offsetof(quac_tensor, shape) == 24, "DLTensor.shape");
_Static_assert(offsetof(quac_tensor, strides) == 32, "DLTensor.strides");
_Static_assert(offsetof(quac_tensor, byte_offset) == 40, "DLTensor.byte_offset");
_Static_assert(sizeof(quac_tensor) == 48, "DLTensor size");
_Static_assert(offsetof(quac_managed_tensor, manager_ctx) == 8, "DLManagedTensorVersioned.manager_ctx");
_Static_assert(offsetof(quac_managed_tensor, deleter) == 16, "DLManagedTensorVersioned.deleter");
_Static_assert(offsetof(quac_managed_tensor, flags) == 24, "DLManagedTensorVersioned.flags");
_Static_assert(offsetof(quac_managed_tensor, tensor) == 32, "DLManagedTensorVersioned.dl_tensor");

/* The ABI version as data, for tools that inspect the host binary. */
const uint32_t quac_host_abi_version[2] = {QUAC_ABI_VERSION_MAJOR, QUAC_ABI_VERSION_MINOR};
