"""Create or update a staff account: ward staff of one or more wards, or a planner."""

import getpass
import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from wards.models import Ward
from wards.roles import PLANNER_GROUP, WARD_STAFF_GROUP, groups_ensure


class Command(BaseCommand):
    help = (
        "Create or update a staff account. "
        "Ward staff: add_staff NAME --ward kita [--ward chuo]. Planner: add_staff NAME --planner."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        role = parser.add_mutually_exclusive_group(required=True)
        role.add_argument(
            "--ward", action="append", dest="wards", metavar="SLUG", help="a ward's slug"
        )
        role.add_argument("--planner", action="store_true", help="政策企画課: every ward")
        parser.add_argument(
            "--password-env",
            metavar="VAR",
            help="read the password from this environment variable instead of a prompt",
        )
        parser.add_argument(
            "--keep-password",
            action="store_true",
            help="when updating an existing account, leave its password as it is",
        )

    def handle(self, *args, username, wards, planner, password_env, keep_password, **options):
        User = get_user_model()
        ward_objs = []
        for slug in wards or []:
            ward = Ward.objects.filter(slug=slug).first()
            if ward is None:
                known = ", ".join(Ward.objects.values_list("slug", flat=True))
                raise CommandError(f"Unknown ward '{slug}'. Known wards: {known or '(none)'}")
            ward_objs.append(ward)
        user = User.objects.filter(username=username).first()
        password = None
        if not (keep_password and user is not None):
            password = self._password(password_env, user or User(username=username))
        with transaction.atomic():
            groups_ensure()
            created = user is None
            user = user or User(username=username)
            user.is_staff = True
            user.is_active = True
            if password is not None:
                user.set_password(password)
            user.save()
            planners = Group.objects.get(name=PLANNER_GROUP)
            staff = Group.objects.get(name=WARD_STAFF_GROUP)
            user.groups.remove(planners, staff)
            user.groups.add(planners if planner else staff)
            user.member_wards.set(ward_objs)
        role = "planner (政策企画課)" if planner else "ward staff of " + ", ".join(wards)
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} {username}: {role}"))

    def _password(self, env_name: str | None, user) -> str:
        if env_name:
            password = os.environ.get(env_name)
            if not password:
                raise CommandError(f"Environment variable {env_name} is empty or not set.")
        else:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                raise CommandError("The passwords do not match.")
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        return password
