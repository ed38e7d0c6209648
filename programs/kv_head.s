# One KV head of one cache block, scaled and written back as fp32.
.program kv_head
.tensor kc  fp16[8,128,4,64] input     # [num_blocks, block_size, kv_heads, head_dim]
.tensor out fp32[128,64]     output

.kernel kv_head
    load     UB[0x0000] fp16[128,64] <- GM:kc[1538:2050:4, 0:64] fp16   # block 3, head 2
    set_flag MTE2 V 0
    wait_flag MTE2 V 0
    vcast    UB[0x4000] fp32[128,64] <- UB[0x0000] fp16[128,64]
    barrier  V
    vmuls    UB[0x4000] fp32[128,64] <- UB[0x4000] fp32[128,64], 0.125
    set_flag V MTE3 0
    wait_flag V MTE3 0
    store    GM:out[0:128, 0:64] fp32 <- UB[0x4000] fp32[128,64]
