"""The simulated 发卡 shop: every source system cardlake reads, with realistic mess and an answer key."""
