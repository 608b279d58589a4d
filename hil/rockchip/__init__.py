"""Rockchip RK3576 / RKNPU / RKLLM knowledge as pure code: log parsers, version rules, board facts,
the configuration checks run before any inference, and host-side readers of real Rockchip files
(.rknn, .rkllm, update.img, runtime libraries; ``hil inspect``). Nothing here touches a board."""
