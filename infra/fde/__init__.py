"""Full-disk encryption: install Debian 13 on LUKS2 from the rescue system, unlock over SSH."""
