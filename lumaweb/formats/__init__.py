"""The site's own date and time formats (settings.FORMAT_MODULE_PATH): Django's English ones ("Dec. 1, 2026,
1:20 p.m.") come before settings.DATETIME_FORMAT, so the admin would otherwise say it another way than the site."""
