/*
 * heap_in_use.h - bytes the allocator has handed out and not had back, all threads: what the
 * memory tests (per idle connection, per claim) measure growth with. Under ASan or TSan the
 * sanitizer's allocator answers (glibc's mallinfo2 does not see it), otherwise glibc's.
 */
#ifndef WEBGW_TESTS_HEAP_IN_USE_H
#define WEBGW_TESTS_HEAP_IN_USE_H

#include <malloc.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
/* the sanitizers' allocator (their runtime defines it; gcc ships no header for it) */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

static inline size_t heap_in_use(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

#endif
