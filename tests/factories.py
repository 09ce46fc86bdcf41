import factory

from apps.accounts.models import Role, Team, User
from apps.catalog.models import Endpoint, Environment, Interface, System


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    role = Role.ENGINEER
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def teams(self, create, extracted, **kwargs):
        if create and extracted:
            self.teams.set(extracted)
        if create:
            self.save()


class EnvironmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Environment
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Env {n}")
    slug = factory.Sequence(lambda n: f"env-{n}")
    position = factory.Sequence(lambda n: n)
    egress_allowlist = factory.LazyFunction(list)


class SystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = System

    name = factory.Sequence(lambda n: f"System {n}")
    kind = "saas"
    owner_team = factory.SubFactory(TeamFactory)


class InterfaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Interface
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"INT-{n + 100:03d}")
    name = factory.Sequence(lambda n: f"Interface {n}")
    owner_team = factory.SubFactory(TeamFactory)
    source_system = factory.SubFactory(
        SystemFactory, owner_team=factory.SelfAttribute("..owner_team")
    )
    target_system = factory.SubFactory(
        SystemFactory, owner_team=factory.SelfAttribute("..owner_team")
    )
    pattern = "sync_api"
    platform = "mulesoft"
    status = "proposed"

    @factory.post_generation
    def tags(self, create, extracted, **kwargs):
        if create and extracted:
            self.tags.set(extracted)


class EndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Endpoint

    interface = factory.SubFactory(InterfaceFactory)
    environment = factory.SubFactory(EnvironmentFactory)
    base_url = "https://api.example.com/v1/"
    auth_type = "none"
