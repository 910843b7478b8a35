"""Directory of support addresses (danh bạ địa chỉ hỗ trợ): an Open Referral HSDS 3.0 model
extended for Vietnamese hotlines, fast diacritic-free search, import/export and upkeep."""
