# y = x * 0.125 over a [64, 256] fp32 tensor on one vector core, in tiles of 16 rows, double-buffered:
# MTE2 loads tile i into one of two UB buffers while V scales tile i-1 and MTE3 stores tile i-2.
# Each hand-off between pipes is a set_flag on the producer and a wait_flag on the consumer;
# (MTE3, MTE2) says a buffer's store is done, so the next load may overwrite it.
.program vector_scale
.tensor x fp32[64,256] input
.tensor y fp32[64,256] output
.kernel scale0 vector
    load     UB[0x0000] fp32[16,256] <- GM:x[0:16, 0:256] fp32
    set_flag MTE2 V 0
    wait_flag MTE2 V 0
    vmuls    UB[0x4000] fp32[16,256] <- UB[0x0000] fp32[16,256], 0.125
    set_flag V MTE3 0
    wait_flag V MTE3 0
    store    GM:y[0:16, 0:256] fp32 <- UB[0x4000] fp32[16,256]
    set_flag MTE3 MTE2 0
    load     UB[0x8000] fp32[16,256] <- GM:x[16:32, 0:256] fp32
    set_flag MTE2 V 1
    wait_flag MTE2 V 1
    vmuls    UB[0xC000] fp32[16,256] <- UB[0x8000] fp32[16,256], 0.125
    set_flag V MTE3 1
    wait_flag V MTE3 1
    store    GM:y[16:32, 0:256] fp32 <- UB[0xC000] fp32[16,256]
    set_flag MTE3 MTE2 1
    wait_flag MTE3 MTE2 0
    load     UB[0x0000] fp32[16,256] <- GM:x[32:48, 0:256] fp32
    set_flag MTE2 V 0
    wait_flag MTE2 V 0
    vmuls    UB[0x4000] fp32[16,256] <- UB[0x0000] fp32[16,256], 0.125
    set_flag V MTE3 0
    wait_flag V MTE3 0
    store    GM:y[32:48, 0:256] fp32 <- UB[0x4000] fp32[16,256]
    wait_flag MTE3 MTE2 1
    load     UB[0x8000] fp32[16,256] <- GM:x[48:64, 0:256] fp32
    set_flag MTE2 V 1
    wait_flag MTE2 V 1
    vmuls    UB[0xC000] fp32[16,256] <- UB[0x8000] fp32[16,256], 0.125
    set_flag V MTE3 1
    wait_flag V MTE3 1
    store    GM:y[48:64, 0:256] fp32 <- UB[0xC000] fp32[16,256]
