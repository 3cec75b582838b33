"""Switchboard service kit: what every TM Forum service of the suite shares."""
