# One way to show a moment, on the site (the `when` filter) and in the admin: day, month and year, then the
# 24-hour time to the second (a generation's events are seconds apart), in the site's time zone.
DATETIME_FORMAT = "j M Y, H:i:s"
DATE_FORMAT = "j M Y"
TIME_FORMAT = "H:i:s"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATE_FORMAT = "j M Y"
